"""HTTP server for qingyin."""
