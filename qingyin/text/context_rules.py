"""Context rules: readings that the neighbouring words settle, the way grammar does.

Four kinds: a measure word after a numeral or demonstrative (三只 zhi1, 两宿 xiu3); a one-character verb before
its object or complement (种花 zhong4, 量体温 liang2, 藏在 cang2); a particle or modal told apart by the part of
speech around it (快乐地唱 de5, 我得回家 dei3, 吃得饱 de5); and the colloquial reading a character has when it
stands alone as a word (削 xiao1, 剥 bao1, 塞 sai1), where compounds keep the literary one (削弱, 剥削, 堵塞).
Parts of speech are jieba's dictionary tags of the neighbouring words (`word_tags`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from .phrases import Evidence
from .segmentation import PUNCTUATION, word_tag

_CLAUSE = f"[{PUNCTUATION}“”‘’「」（）《》\\s]"  # a clause boundary (the text's ends count as one)
_SUBJECT = "(?:我|你|他|她|它|您|咱|们|谁|大家|自己)"  # a pronoun subject, just before the verb
_DEGREE = "(?:很|非常|太|十分|特别|相当|更|真|极|较|较为|比较|越来越|这么|那么|这样|那样)"
_WINDOW = 12  # characters of context each side; enough for every pattern below


@dataclass(frozen=True)
class ContextRule:
    """A reading of `char` that its neighbours settle, whatever the model thinks.

    The rule holds where the text before the character ends with a match of `before` and the text after it
    begins with a match of `after`; the text's start and end count as clause boundaries. Where `previous_tag` or
    `next_tag` is given, the jieba part-of-speech tag of the word before (after) the character's word must
    match it too (e.g. "v" for a verb, "[nr]" for a noun or pronoun).
    """

    name: str
    char: str
    reading: str
    before: str
    after: str
    previous_tag: str = ""
    next_tag: str = ""
    alone: bool = False  # only where the character stands alone (see matching_rule)
    over_words: bool = False  # may overrule the dictionary reading of the word (a form it does not see: 唱片儿)
    counts: bool = False  # a measure-word rule: may overrule a numeral-and-measure word (一行, see _weak)

    @property
    def patterns(self) -> tuple[re.Pattern[str], re.Pattern[str]]:
        """`before` anchored at the end of the text before, `after` at the start of the text after."""
        return _compiled(self.before, self.after)


@cache
def _compiled(before: str, after: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Compiled patterns of a rule, built once."""
    return re.compile(f"(?:{before})$"), re.compile(after)


_HAN_NOT_SUBJECT = "(?![我你他她它您咱们谁])[\u3400-\u9fff]"
# What may follow 地 di4 "land" as a noun (地方, 地上, 这块地的), where it is not the adverbial particle.
_DI_NOUN = (
    "方区带点面上下里图址位名形质理震球铁板毯道产主税价层势盘段域基标界貌表租契皮瓜头步狱窖堡勤心核壳幔平级市委宫热雷的"
)
_ADVERBIAL = r"([\u3400-\u9fff])\1|[\u3400-\u9fff](?:性|然|般|断)"  # 慢慢, 预见性, 突然, 奇迹般, 不断

# --- measure words: after a numeral or a demonstrative, a character is read as the measure word it is there.
_COUNTED_CHARS = "零〇一二两三四五六七八九十百千万几半多这那哪每某"
_COUNTED = f"[{_COUNTED_CHARS}]"
_MEASURE_WORDS = {  # character: its reading as a measure word (三只鸭, 两宿, 三担水, 一间房, 两杆枪, 一卷纸, ...)
    "只": "zhi1", "担": "dan4", "间": "jian1", "杆": "gan3", "处": "chu4",
    "种": "zhong3", "片": "pian4", "斗": "dou3", "笼": "long2", "曲": "qu3", "圈": "quan1", "觉": "jiao4",
    "钻": "zuan4",
}  # fmt: skip
_MEASURE_WORD_RULES = (
    *(ContextRule(f"measure word {r}", c, r, _COUNTED, "", counts=True) for c, r in _MEASURE_WORDS.items()),
    ContextRule(
        "measure word xiu3", "宿", "xiu3", "[一两几半整三四]", "", counts=True
    ),  # 两宿: nights (二十八宿 is xiu4)
    ContextRule("measure word zhuan4", "转", "zhuan4", "[十百千万]", "", counts=True),  # 三千转: revolutions
    ContextRule("measure word pao1", "泡", "pao1", _COUNTED, "[尿屎]", counts=True),  # 一泡尿
    ContextRule("measure word pao1", "泡", "pao1", f"尿了?{_COUNTED}", "", counts=True),  # 尿了三泡
    ContextRule(
        "lane long4", "弄", "long4", "[零〇一二三四五六七八九十百]", "[零〇一二三四五六七八九十]+号"
    ),  # 520弄3号
    ContextRule("measure word geng1", "更", "geng1", "[一二三四五]", "[天半]", counts=True),  # 三更半夜: a night watch
)

# --- collocations: mostly one-character verbs before an object or a complement, where the noun or adjective
# reads otherwise (种玉米, 量体温); also adjectives after degree words and fixed neighbours (太重了, 打的回去).
_COMPLEMENT = "[了着过在到成上下进出起开完好住满掉]|一[下遍次把点些]"
_COLLOCATION_RULES = (
    ContextRule("planting zhong4", "种", "zhong4", f"(?<!{_COUNTED})", f"{_COMPLEMENT}|得|[树花草菜豆瓜麦稻]"),
    ContextRule("planting zhong4", "种", "zhong4", f"(?<!{_COUNTED})", "", next_tag="n"),  # 种玉米: an object
    ContextRule(
        "measuring liang2", "量", "liang2", "", f"{_COMPLEMENT}|一量|体温|血压|身高|体重|尺寸|腰围|长度|距离|房"
    ),
    ContextRule("hiding cang2", "藏", "cang2", "", f"{_COMPLEMENT}|哪|起来|东西"),
    ContextRule("rolling juan3", "卷", "juan3", "", "[成起上好了着住进]"),
    ContextRule("sewing feng2", "缝", "feng2", "", "[了着好上补起]|一下|一针|扣子|衣服|被子|伤口"),
    ContextRule("nailing ding4", "钉", "ding4", "", "[在上好了住进牢木]|一下|扣子|钉子|[一两三几]处|个|鞋掌|掌"),
    ContextRule("stewing men1", "闷", "men1", "", "[一上会着在泡软熟烂]|[几两三五十]分钟"),
    ContextRule("coaxing hong3", "哄", "hong3", "", "[我你他她它孩宝了着好睡骗]|一会|一下"),
    ContextRule("coaxing hong3", "哄", "hong3", "[着去来别]", _CLAUSE),
    ContextRule("roaring hong1", "哄", "hong1", "(?<![他她我你它])", "[的地]一声|堂|然|笑"),
    ContextRule("choosing tiao1", "挑", "tiao1", "", f"[选一了着好中在]|[水担]|花眼|[一两几三四五]?[桶担筐]|{_CLAUSE}"),
    ContextRule("pouring dao4", "倒", "dao4", "", "[一杯碗盆壶点些进掉出]|[水茶酒油汤]|过来|过去"),
    ContextRule("contrary dao4", "倒", "dao4", f"{_SUBJECT}|[你我他她]们?", "[先是也还挺蛮]"),  # 你倒先生气了
    ContextRule("again chong2", "重", "chong2", "[^很太真极更挺好多最么样较]", "[说写做来装开读考填办拍选算画问修]"),
    ContextRule("growing zhang3", "长", "zhang3", "", "这么|那么|出|高|胖|成|满|个子"),
    ContextRule("short of cha4", "差", "cha4", "", "[一二两三四五六七八九十几半]"),
    ContextRule(
        "carrying bei1",
        "背",
        "bei1",
        "",
        "得动|不动|起|回|黑锅|了[^，。]{0,6}债|孩子|行李|[一二两三四五六七八九十几百]+斤|[书背]?包|好|[^，。]{0,6}包袱",
    ),
    ContextRule("counting shu3", "数", "shu3", "[一二三四五六七八九十]", "到"),  # 从一数到十
    ContextRule("counting shu3", "数", "shu3", "", "清|得清|不清|一数"),
    ContextRule(
        "kneading huo2", "和", "huo2", "[来帮先去会要在水您你我他她]", "(?:面|泥)(?![包条粉前对具积子孔膜貌料团食])"
    ),
    ContextRule("kneading huo2", "和", "huo2", "[面要再没]", "得"),  # 面和得太软
    ContextRule("kneading huo2", "和", "huo2", "面", "好"),  # 面和好了
    ContextRule("kneading huo2", "和", "huo2", "忙着|正在|在|去|来", "水泥|泥巴?"),
    ContextRule("kneading huo2", "和", "huo2", f"边[^{PUNCTUATION}]?边|现", ""),  # 边加边和, 现和现擀
    ContextRule("kneading huo2", "和", "huo2", "水", "成"),  # 加水和成面团
    ContextRule("bearing fruit jie1", "结", "jie1", "(?:树|藤|枝|梨|苗|秧|瓜)[上里]?", "[了满出得]"),
    ContextRule(
        "bearing fruit jie1", "结", "jie1", "", f"[满了出]+[^{PUNCTUATION}]{{0,6}}?(?:果|瓜|籽|穗|桃|梨|枣|荚)"
    ),
    ContextRule("bearing fruit jie1", "结", "jie1", "", "[一二两三四五六七八九十几]+个?(?:果|瓜)"),
    ContextRule(
        "bearing fruit jie1",
        "结",
        "jie1",
        f"开花[^{PUNCTUATION}]{{0,3}}|不|首次|秋天|树[^{PUNCTUATION}]{{0,3}}",
        "果(?![然是呢])",
        over_words=True,
    ),
    ContextRule("minding kan1", "看", "kan1", "(?:帮|替|给)[我你他她您]?|负责|专门", "孩子|小孩|家|门|大门|仓库|店|摊"),
    ContextRule("spacing kong4", "空", "kong4", "", "[一两几三]?[格行]"),
    ContextRule(
        "leading shuai4", "率", "shuai4", "", "[团队部领兵军]|[一二两三四五六七八九十几数百千万]+[万千百]?[大名人]"
    ),
    ContextRule("taming xiang2", "降", "xiang2", "", "得住|不住|住|服"),
    ContextRule("showing lou4", "露", "lou4", "", "了?(?:个头|一手|一小手|个脸|马脚|一面|丑)|馅"),
    ContextRule("durable jin1", "禁", "jin1", "很|不|太|挺|真|特别|比较|耐", "[穿用洗磨摔晒冻放]"),
    ContextRule("somersault zhe1", "折", "zhe1", "", "了?[一几两三个]*个?跟头"),
    ContextRule("snapping she2", "折", "she2", "腿|绳子?|棍子?|树枝|杆子?|竿子?|骨头", "了|断"),
    ContextRule("fond of hao4", "好", "hao4", "", "面子|胜|强(?!大)|赌|色|酒"),
    ContextRule("easy hao3", "好", "hao3", _DEGREE, "(?!强|胜|面子|赌|色|酒|奇|客)"),  # 很好学: easy to learn
    ContextRule("winning hu2", "和", "hu2", "", f"牌|了(?:{_CLAUSE}|[一两三几]把)"),  # mahjong: 我和了
    ContextRule("playing tan2", "弹", "tan2", "", "[琴奏了着起过的]|钢琴|吉他|一曲|[一两几]首|棉花"),
    ContextRule(
        "rowing hua2", "划", "hua2", "", f"[船桨开破伤过]|了[^{PUNCTUATION}]{{0,3}}道|龙舟|[一两几]?根?火柴|{_CLAUSE}"
    ),
    ContextRule("proofreading jiao4", "校", "jiao4", "", "了?[一两三四五几]遍"),
    ContextRule("vomiting tu4", "吐", "tu4", "想|恶心得?|直|要|就|又|都|差点儿?|差一点", "(?![痰核骨出字露槽舌气口])"),
    ContextRule("vomiting tu4", "吐", "tu4", "", "了一[地身]|得|奶"),
    ContextRule("rinsing piao3", "漂", "piao3", "", "[几一两三]遍|一下|洗"),
    ContextRule("watering yin4", "饮", "yin4", "", "[牛马羊驴骡]|牲口|牲畜|骆驼|[一二两三]次[牛马羊驴骡]"),
    ContextRule("watering yin4", "饮", "yin4", "[驴马牛羊骡]子?", "了"),
    ContextRule("deceiving meng1", "蒙", "meng1", "", f"[我你他她人对错]|了(?:{_CLAUSE})|顾客|客人|消费者"),
    ContextRule("losing she2", "折", "she2", "", "[点了]?本"),  # 折本, 折点本
    ContextRule("heading for ben4", "奔", "ben4", "", "着|[东西南北]"),
    ContextRule(
        "returning huan2",
        "还",
        "huan2",
        "请|按时|及时|记得|要|需|应|先|去|来|没",
        "[到给回清]|钱|书|款|债|贷|金额|本金|利息",
    ),
    ContextRule("found zhao2", "着", "zhao2", "[找睡猜买借碰遇见点够摸抓逮]", "了"),  # 找着了, 睡着了
    ContextRule(
        "liao3 after a potential", "了", "liao3", "[\u4e00-\u9fff][得不]", f"{_CLAUSE}|[啊吗吧呢的]"
    ),  # 修得了吗
    ContextRule("echoing he4", "和", "he4", "(?<![反答响供对适效感顺呼])应", ""),  # 跟着应和
    ContextRule(
        "kneading huo2", "和", "huo2", "", "[好点了的一二两三半斤]{1,4}[面泥](?![包条粉前对具积子孔膜貌料团食])"
    ),
    ContextRule("wedging sai1", "塞", "sai1", "", "牙|红包|钱|给|进|满|下|了|不下|得|那么|这么"),
    ContextRule("heading for ben4", "奔", "ben4", "", f"哪|[^{PUNCTUATION}]{{1,5}}?去(?!世)"),
    ContextRule("rather ning4", "宁", "ning4", "", "[死为可愿肯停]"),
    ContextRule("short of cha4", "差", "cha4", "", "了?[一二两三四五六七八九十几半]|的(?:时候|话)"),
    ContextRule("taxi di1", "的", "di1", "[位个名]", "[姐哥]"),
    ContextRule("taxi di1", "的", "di1", "打个", ""),
    ContextRule("snapping she2", "折", "she2", "一声|就|刮|压|踩|掰|咔嚓", f"了|断|{_CLAUSE}"),
    ContextRule("snapping she2", "折", "she2", "[芯骨干腿杆棍枝]|又|都|突然", f"了(?:{_CLAUSE}|[一两几]根)"),
    ContextRule("losing she2", "折", "she2", "", f"了[^{PUNCTUATION}]{{0,4}}[万千百块元钱]"),
    ContextRule(
        "carrying tiao1", "挑", "tiao1", "", f"起[^{PUNCTUATION}]{{0,8}}担", over_words=True
    ),  # 挑起重担; 挑起事端 is tiao3
    ContextRule("counting shu3", "数", "shu3", "", "星星|钱|羊|人数|手指|过了|了一遍|了两遍"),
    ContextRule("counting shu3", "数", "shu3", f"{_CLAUSE}|里|中", f"[^{PUNCTUATION}]{{1,5}}?最"),  # 全班数小刚跑得最快
    ContextRule(
        "dazzling huang3",
        "晃",
        "huang3",
        "",
        f"[得到][^{PUNCTUATION}]{{0,8}}?(?:眼|看不清)|[我你他她][^{PUNCTUATION}]{{0,2}}眼",
    ),
    ContextRule("dazzling huang3", "晃", "huang3", f"{_DEGREE}|挺|有点儿?", ""),
    ContextRule("minding kan1", "看", "kan1", "(?<![去来])", "大门|店(?![里面铺])|[羊牛鸭鹅]|住"),
    ContextRule("dried gan1", "干", "gan1", "[菇菜肉笋鱼虾]|萝卜", "(?![活事部])"),
    ContextRule("errand chai1", "差", "chai1", "[趟肥]", ""),
    ContextRule("short of cha4", "差", "cha4", "", "[你我他她]一个"),
    ContextRule("deceiving meng1", "蒙", "meng1", "带|是", "(?![族古语医])"),
    ContextRule("treating dang4", "当", "dang4", f"把[^{PUNCTUATION}]{{1,6}}", "什么"),
    ContextRule("treating dang4", "当", "dang4", "就", "[我你他她]没"),
    ContextRule("treating dang4", "当", "dang4", "", "[两三四五]个人用"),
    ContextRule("turning zhuan4", "转", "zhuan4", "[能会在]", _CLAUSE),
    ContextRule("parking bo2", "泊", "bo2", "", "[好车在]"),
    ContextRule("shouting he4", "喝", "he4", "一声|断", ""),
    ContextRule("swallowing yan4", "咽", "yan4", "[再里直]", "(?![喉炎部])"),
    ContextRule("workshop fang2", "坊", "fang2", "[腐糖油酒磨染粉醋]", ""),
    ContextRule("weighing zhong4", "重", "zhong4", "多", f"{_CLAUSE}|[啊呀呢]", over_words=True),  # 多重？ how heavy
    ContextRule(
        "purpose wei4", "为", "wei4", "(?<![评选称视作成认改变])", "救|抢救|保护|迎接|庆祝|纪念|方便|避免|防止"
    ),
    ContextRule("by the piece zhi1", "只", "zhi1", "[按论]", ""),
    ContextRule(
        "daubing hu1", "糊", "hu1", f"(?:泥|泥巴|水泥|石膏|灰|奶油|蜂蜡)[^{PUNCTUATION}]{{0,10}}", "(?![涂里弄])"
    ),
    ContextRule("turning zhuan4", "转", "zhuan4", "", "起来|了?[一两几三]?圈|个不停"),
    ContextRule("turning zhuan4", "转", "zhuan4", "[呼快慢]地", ""),
    ContextRule("adjusting tiao2", "调", "tiao2", "", "[低高亮暗小大快慢匀]|在一起|好"),
    ContextRule("growing zhang3", "长", "zhang3", "", "了?(?:霉|斑|痘|草|虫|芽|毛|疮|疙瘩|锈|青苔)"),
    ContextRule("recorded zai3", "载", "zai3", "[年志史书所]", ""),  # 十年八载, 据县志载
    ContextRule("years zai3", "载", "zai3", "[一二三四五六七八九十百千]", "(?![重人客货])"),  # 任教三十载
    ContextRule("drilling zuan1", "钻", "zuan1", "", f"[^{PUNCTUATION}]{{0,6}}?空子"),
    ContextRule("shouldering he4", "荷", "he4", "", "枪|锄"),
    ContextRule("frying zha2", "炸", "zha2", "[复干煎慢]|小火|中火|大火", ""),
    ContextRule(
        "frying zha2",
        "炸",
        "zha2",
        "",
        f"[^{PUNCTUATION}]{{0,6}}?(?:藕盒|酥肉|麻团|丸子|油条|春卷|鸡翅|薯条|花生|带鱼|小黄鱼|排骨|油饼)",
    ),
    ContextRule("woollen ni2", "呢", "ni2", "格子|毛|花", ""),
    ContextRule("sewing feng2", "缝", "feng2", "", "[一两几三]针|在|拉链|衣|袖|裤"),
    ContextRule("crack feng4", "缝", "feng4", "[条道个]", ""),
    ContextRule("photo pian1", "片", "pian1", "[相画唱影照]|动画", "儿", over_words=True),  # 相片儿: 〈口〉 piānr
    ContextRule("proofreading jiao4", "校", "jiao4", "", "过|一下|了整整"),
    ContextRule("covering meng2", "蒙", "meng2", "", "[着上了]一层|住", over_words=True),
    ContextRule("Mongolia meng3", "蒙", "meng3", "[中俄]", "两国|边境|关系|双方"),
    ContextRule("stuffy men1", "闷", "men1", "又湿又|湿|热|天气[^，。]{0,3}|屋里[^，。]{0,3}", ""),
    ContextRule("stuffy men1", "闷", "men1", "", "得人|得喘"),
    ContextRule("modal dei3 before a verb", "得", "dei3", _SUBJECT, "多[吃穿喝带练]|少[吃喝玩]|慢慢"),
    ContextRule(
        "needing dei3", "得", "dei3", "至少|起码|最少|最多|大概|大约|总共|少说也", "[一二两三四五六七八九十几半]"
    ),
    ContextRule("needing dei3", "得", "dei3", "", "下周|下个?月|明天|后天|等到", previous_tag="[nrt]"),
    ContextRule("zhao2 after a potential", "着", "zhao2", "[\u4e00-\u9fff][不得]", f"{_CLAUSE}|[了啊吗吧呢]"),  # 点不着
    ContextRule("zhao2 of catching", "着", "zhao2", "", "了(?:迷|火|凉|魔|急)"),  # 着了迷
    ContextRule("thin bao2", "薄", "bao2", "", "被子?|点儿?|片|衣服|外套|饼|皮"),
    ContextRule("leaving out la4", "落", "la4", "别|不要|千万别|没|不能", f"字|了?(?:谁|什么)|东西|{_CLAUSE}"),
    ContextRule("leaving behind la4", "落", "la4", "手机|钥匙|钱包|充电宝|雨伞|伞|东西|包", "在|下"),
    ContextRule("sparing she3", "舍", "she3", "", "不[下了]|掉|得"),
    ContextRule("giving way jin3", "尽", "jin3", "", "着"),  # 尽着孩子们吃
    ContextRule(
        "adjusting tiao2", "调", "tiao2", f"(?:闹钟|时间|温度|音量|空调|亮度|频道|水温)[^{PUNCTUATION}]{{0,2}}", ""
    ),
    ContextRule("bending qu1", "曲", "qu1", "", "着?[腿膝身背]"),
    ContextRule("pole dan4", "担", "dan4", "[菜货扁]", ""),
    ContextRule("hitting zhong4", "中", "zhong4", "[砸打射击猜抽押踢投扔说]", "了"),
    ContextRule("rarely xian3", "鲜", "xian3", "", "能|有(?!点)|见"),
    ContextRule("lodge she4", "舍", "she4", "[猪牛羊鸡鸭马宿校农]", ""),
    ContextRule(
        "mansion xiu4",
        "宿",
        "xiu4",
        "[角亢氐房心尾箕斗牛女虚危室壁奎娄胃昴毕觜参井鬼柳星张翼轸]",
        "[一二三四五六七八九十]",
    ),
    ContextRule("close ai1", "挨", "ai1", "", f"[我你他她着]?[^{PUNCTUATION}]{{0,3}}近|在一起"),
    ContextRule("one by one ai1", "挨", "ai1", "一[只个条家户辆]", "一"),  # 一只挨一只
    ContextRule("sleep jiao4", "觉", "jiao4", "[睡个好午大稳]", ""),
    ContextRule("sleep jiao4", "觉", "jiao4", "[了老]", "[少多]"),  # 人老了觉少
    ContextRule("graded bao2", "薄", "bao2", f"{_DEGREE}|最|挺", "(?![弱情利])"),
    ContextRule("milling mo4", "磨", "mo4", "", f"[^{PUNCTUATION}]{{0,3}}?(?:面|豆腐|玉米|麦子|米粉|豆浆)"),
    ContextRule("all dou1", "都", "dou1", "(?<![首成])", "(?![柏匀江市指督护统尉])", alone=True),
    ContextRule("fine xing2", "行", "xing2", "(?<![一二两三四五六七八九十几每这那哪])", "不[行？?，。]|吗|吧|不$"),
    ContextRule("zhao2 after a potential", "着", "zhao2", "没[\u4e00-\u9fff]", _CLAUSE),  # 没打着
    ContextRule("in its fifties ben4", "奔", "ben4", "", "[三四五六七八九]十"),
    ContextRule("leaving behind la4", "落", "la4", f"把[^{PUNCTUATION}]{{1,8}}", "[在下]|家"),
    ContextRule("frying zha2", "炸", "zha2", "", "至|到?金黄|熟|透|酥|脆|了?一?[盘锅碗份]"),
    ContextRule("scattering sa3", "撒", "sa3", "", "[进了一半盐种籽着完得]|化肥|花瓣|草籽|辣椒|孜然|胡椒|葱花|芝麻"),
    ContextRule("piercing tiao3", "挑", "tiao3", "", "破"),
    ContextRule(
        "tying za1", "扎", "za1", "", f"[^{PUNCTUATION}]{{0,8}}?(?:辫|头发|马尾)|成|捆|彩|灯笼|紧|起来|了[一两几三]圈"
    ),  # 扎辫子, 扎了两条小辫子
    ContextRule("plain pu3", "朴", "pu3", "[简古纯诚质淳俭素实敦]", "", over_words=True),  # pypinyin gives 纯朴 piao2
    ContextRule("wedging sai1", "塞", "sai1", "里|(?<![前飞开])往", ""),
    ContextRule("sparing she3", "舍", "she3", "", "小家|命|身|己"),
    ContextRule("watering yin4", "饮", "yin4", "", f"[^{PUNCTUATION}]{{0,8}}?[牛马羊驴骡]|饱"),
    ContextRule("minding kan1", "看", "kan1", "", "会儿摊|摊|瓜(?!子)|果园"),
    ContextRule("minding kan1", "看", "kan1", "专人|有人|负责", ""),
    ContextRule("returning huan2", "还", "huan2", "", "[我你他她]钱|房贷|车贷|信用卡|花呗"),
    ContextRule("returning huan2", "还", "huan2", "时候|每个?月[^，。]{0,2}", "(?!是|有|在|要|没|会)"),
    ContextRule("planting zhong4", "种", "zhong4", f"(?<!{_COUNTED})", "的是"),
    ContextRule("planting zhong4", "种", "zhong4", "再|先|去|来|要", _CLAUSE),
    ContextRule("kneading huo2", "和", "huo2", "", "砂浆|灰(?!色)"),
    ContextRule("kneading huo2", "和", "huo2", _CLAUSE, "面(?![包条粉前对具积子孔膜貌料团食])"),
    ContextRule("winning hu2", "和", "hu2", "也?没", _CLAUSE),
    ContextRule("taxi di1", "的", "di1", "坐面|坐摩", ""),
    ContextRule("modal dei3", "得", "dei3", "还", "[你我他她]"),
    ContextRule("modal dei3", "得", "dei3", "", "饭[前后]|按时|提前"),
    ContextRule("zhao2 after a potential", "着", "zhao2", "没[买找抓借碰打见]", ""),
    ContextRule("hitting zhong4", "中", "zhong4", "[摇选]", ""),
    ContextRule("doing gan4", "干", "gan4", "[想要去肯愿敢]", _CLAUSE),
    ContextRule("night watch geng1", "更", "geng1", "[一二三四五]", "大约|时"),
    ContextRule("bearing fruit jie1", "结", "jie1", "架[上里]?", "[了满出得]"),
    ContextRule("measuring liang2", "量", "liang2", "", f"[^{PUNCTUATION}]{{0,8}}?有多[长粗高宽重大深]"),
    ContextRule("turning zhuan4", "转", "zhuan4", "", "[一二两三四五六七八九十百千万]+圈|了一下午|了半天|来转去"),
    ContextRule("scratching hua2", "划", "hua2", "", "一?个?十字|口子|一刀"),
    ContextRule("offering gong4", "供", "gong4", "", f"着[^{PUNCTUATION}]{{0,4}}(?:佛|神|像|牌位)"),
    ContextRule("leaving behind la4", "落", "la4", "", "[你我他她]车上|在(?:车上|柜台|前台|家里)"),
    ContextRule("surname zeng1", "曾", "zeng1", "", "队长|局长|院长|主任|总(?![是共])"),
    ContextRule("once ceng2", "曾", "ceng2", _SUBJECT, ""),
    ContextRule("role jue2", "角", "jue2", "[个这那主名]", "儿"),
    ContextRule("carrying bei1", "背", "bei1", "", "锅"),
    ContextRule(
        "behind bei4", "背", "bei4", "", f"着[我你他她]们?[^{PUNCTUATION}]{{0,3}}(?:打|说|做|干|偷|去)", over_words=True
    ),
    ContextRule("showing lou4", "露", "lou4", "", f"半点|[^{PUNCTUATION}]{{0,3}}脸|了?光|风声"),
    ContextRule("deceiving meng1", "蒙", "meng1", "", "外地人|游客|老人"),
    ContextRule("dazed meng1", "蒙", "meng1", "[我你他她]", "了"),
    ContextRule("covering meng2", "蒙", "meng2", "", "了一面|鼓"),
    ContextRule("shouting he4", "喝", "he4", "暴", ""),
    ContextRule("recorded zai3", "载", "zai3", "", "于"),
    ContextRule("somersault zhe1", "折", "zhe1", "", "了?[一二两三四五六七八九十几个]*跟头"),
    ContextRule("snapping she2", "折", "she2", "怎么|竿", "了"),
    ContextRule("losing she2", "折", "she2", "", "进去"),
    ContextRule("rude heng4", "横", "heng4", "怎么|发什么", ""),
    ContextRule("mansion xiu4", "宿", "xiu4", "[东西南北]方[^，。]{0,2}[一二三四五六七]|七", ""),
    ContextRule(
        "mansion xiu4", "宿", "xiu4", "[角亢氐房心尾箕斗牛女虚危室壁奎娄胃昴毕觜参井鬼柳星张翼轸]", "[，。那它]"
    ),
    ContextRule("lane long4", "弄", "long4", "[零〇一二三四五六七八九十百]", "[，。对吗]"),
    ContextRule("tying za1", "扎", "za1", "", f"[^{PUNCTUATION}]{{0,4}}风筝|了[一二两三]道"),
    ContextRule("choosing tiao1", "挑", "tiao1", "", "年货"),
    ContextRule(
        "frying zha2", "炸", "zha2", "", f"得[^{PUNCTUATION}]{{0,3}}[香脆酥黄]|的还是|过[^{PUNCTUATION}]{{0,3}}东西"
    ),
    ContextRule("milling mo4", "磨", "mo4", "", "成了?面?粉"),
    ContextRule("daubing hu1", "糊", "hu1", f"(?:腻子|裂缝|缝|墙上)[^{PUNCTUATION}]{{0,10}}", "(?![涂里弄])"),
    ContextRule("spreading pu1", "铺", "pu1", "", "了一层|草皮"),
    ContextRule("spreading pu1", "铺", "pu1", "新|刚", "的"),
    ContextRule("dirty zang1", "脏", "zang1", f"{_DEGREE}|嫌|挺|好", ""),
    ContextRule("measure word pao1", "泡", "pao1", "撒", "", counts=True),
    ContextRule("measure word pao1", "泡", "pao1", _COUNTED, "狗屎|狗尿", counts=True),
    ContextRule("drilling zuan1", "钻", "zuan1", "", "[过进出到]"),
    ContextRule("paring xiao1", "削", "xiao1", "", "[一二两三四五六七八九十几百]"),
    ContextRule("scattering sa3", "撒", "sa3", "", "狗粮"),
    ContextRule("stuffy men1", "闷", "men1", "", "得像"),
    ContextRule("rinsing piao3", "漂", "piao3", "", "干净|[一两三]次"),
    ContextRule("nailing ding4", "钉", "ding4", "", "紧"),
    ContextRule("roaring hong1", "哄", "hong1", "", "[的地]一下"),
    ContextRule("adjusting tiao2", "调", "tiao2", "", "一下|好了|准"),  # 调一下温度
    ContextRule("returning huan2", "还", "huan2", f"把[^{PUNCTUATION}]{{1,6}}", "了|给|回"),  # 把钱还了
    ContextRule("dry gan1", "干", "gan1", "衣服|裤子|鞋|袜子|毛巾|头发|地面|油漆|墙|碗|被子", f"了|透|得|{_CLAUSE}"),
    ContextRule("photo xiang4", "相", "xiang4", "[照拍合]个?", ""),  # 照个相
    ContextRule("minding kan1", "看", "kan1", "在家", "孩子|小孩|家"),
    ContextRule("close ai1", "挨", "ai1", "紧", ""),  # 紧挨着
    ContextRule("close ai1", "挨", "ai1", "", "肩"),  # 挨肩
    ContextRule("general jiang4", "将", "jiang4", "[魏蜀吴敌]", "[，。、的后与和]"),  # 魏将: a general of Wei
    ContextRule("frying zha2", "炸", "zha2", "续", ""),
    # 晕 yùn is the noun "halo" (日晕, 光晕): after 的 or a halo's body, before a place word (暗物质晕里, 黑洞的晕中).
    ContextRule("halo yun4", "晕", "yun4", "的|物质|星系|银河系", "[中里内外周，。]"),
    # 都 dū heads the titles of chief officials (都指挥使, 都转运使, 都虞候); 他们都指挥过 reads dōu elsewhere.
    ContextRule("chief du1", "都", "du1", "", "指挥使|指挥同知|指挥佥事|转运使|虞候|知兵马使|统制"),
    # 尽 jìn "entirely" standing before a verb (尽得其传, 尽交); 尽 jǐn keeps to its words (尽快, 尽早, 尽着).
    ContextRule("entirely jin4", "尽", "jin4", "(?<!不)", "[得交收失显归除赦弃毁入]", alone=True),
    ContextRule("hiding cang2", "藏", "cang2", "所", "(?![族语文区式])"),  # 所藏: 所 before a verb
    # 盛 chéng "ladle, fill" before what fills the bowl (盛饭, 盛了一碗汤, 盛满); 盛 shèng "flourishing" is in words.
    ContextRule("ladling cheng2", "盛", "cheng2", "", "了?(?:[饭汤粥菜]|米饭|[一两几半]碗|[一两几]勺|满)|进|在"),
    ContextRule("sticking zhan1", "粘", "zhan1", "", "[在上住到满了起牢]"),  # 粘在, 粘住; 粘稠, 粘着力 are nian2
    # 涌 chong1 "a creek" ends Cantonese place names (麻涌、葵涌); 汹涌, 泉涌, 管涌 are yong3.
    ContextRule("stream chong1", "涌", "chong1", "(?![管汹泉潮奔喷])[\u4e00-\u9fff]", "[、，。河村镇区站口两]"),
    ContextRule("rows hang2", "行", "hang2", "[零一二两三四五六七八九十百千]多", "(?!不)", counts=True),
    # 传 zhuàn "a biography, a commentary" ends a book's title (《水浒传》, 《春秋左氏传·桓公九年》).
    ContextRule("title zhuan4", "传", "zhuan4", "《[^《》]*[\u4e00-\u9fff]", "[》·]"),
    # 更 gèng "more" standing alone in a comparison (比昨天的更新鲜); 更新, 更换 are words of their own.
    ContextRule("more geng4", "更", "geng4", f"比[^{PUNCTUATION}]{{0,8}}", "", alone=True),
    ContextRule("once ceng2", "曾", "ceng2", "", "一度|[两几]度|多次|先后"),  # 股价曾一度跌破十元
    # 撮 cuō counts pinches (一撮盐); 撮 zuǒ counts tufts of hair (一撮毛).
    ContextRule("pinch cuo1", "撮", "cuo1", _COUNTED, f"(?![^{PUNCTUATION}]{{0,2}}(?:毛|发|须|胡|鬓))", counts=True),
    ContextRule("kudzu ge2", "葛", "ge2", "", "属(?!于)|科(?![长学技员室])"),  # 蓬莱葛属: the plant, in a genus's name
    # 削 xuē "strip of" a rank or a fief (削藩, 削籍, 削亲王品级); 削 xiāo "pare" takes fruit and pencils.
    ContextRule("stripping xue1", "削", "xue1", "", f"[藩籍爵]|[^{PUNCTUATION}]{{0,4}}?(?:品级|爵位|王爵|封号|封地)"),
    ContextRule("swaying huang4", "晃", "huang4", "摇一", "", over_words=True),  # 一摇一晃
    # 弄 lòng "a lane" counted by 条 or naming a neighbourhood (四十三条老弄, 百福弄社区)
    ContextRule("lane long4", "弄", "long4", "条老?", "(?![干清坏脏乱丢错懂明湿断死伤成到出得不了好])"),
    ContextRule("lane long4", "弄", "long4", "[\u4e00-\u9fff]", "社区|小区|居委"),
    ContextRule("dazzling huang3", "晃", "huang3", f"(?:阳光|灯光|车灯|光线|反光)[^{PUNCTUATION}]{{0,2}}", ""),
    # 镐 gǎo "a pick" after what it is made of or done with (斧镐, 铁镐, 抡镐); 镐 hào is 镐京 and given names.
    ContextRule("pick gao3", "镐", "gao3", "[斧铁钢洋抡挥举]|十字|鹤嘴|丁字", ""),
    ContextRule("rowing hua2", "划", "hua2", "桨", ""),  # 持桨划行: an oar is rowed
    # 垛 duò "a stack" of straw or grain (麦秸垛, 稻草垛); 垛 duǒ is the jutting part of a wall (城垛, 垛口).
    ContextRule("stack duo4", "垛", "duo4", "[秸草柴麦稻粮谷]|柴火", ""),
    # 幢 chuáng "a pillar inscribed with sutras" (经幢, 石幢, 铁幢); 幢 zhuàng counts buildings (三幢楼).
    ContextRule("pillar chuang2", "幢", "chuang2", "[经石铁]", ""),
    # 汗 hán "khan" standing alone after a name (噶尔丹汗, 拉藏汗); after other words it is sweat (擦擦汗, 一身汗).
    ContextRule("khan han2", "汗", "han2", "", "", previous_tag="(?:nr|ns|nz|x)", alone=True),
    # 褪 tuì "fade" of a colour or what is likened to one (色彩褪去, 褪去光环); 褪 tùn "slip off" (褪去外壳).
    ContextRule("fading tui4", "褪", "tui4", f"[色彩][^{PUNCTUATION}]{{0,3}}", "", over_words=True),
    ContextRule(
        "fading tui4",
        "褪",
        "tui4",
        "",
        f"去了?[^{PUNCTUATION}]{{0,4}}?(?:色彩|颜色|光环|光芒|青涩|稚气)",
        over_words=True,
    ),
    # 挑 tiāo "carry on a shoulder pole" before where the load goes (挑回家, 挑入宫中); 挑起, 挑出 may be tiǎo.
    ContextRule("carrying tiao1", "挑", "tiao1", "", "[回入进]"),
    # 揣 chuǎi "guess" what is on someone's mind (揣上意, 揣其意); 揣 chuāi "tuck away" (揣在怀里).
    ContextRule("guessing chuai3", "揣", "chuai3", "", "(?:上|圣|帝|其|人)意"),
    # 还 huán "return" to the capital, to court or home, ending a clause (遂还京师。, 班师还朝); 还 hái is "still".
    ContextRule("returning huan2", "还", "huan2", "", f"(?:京师|京城|本国|故国|故乡|故里|朝)(?:{_CLAUSE}|[后时])"),
    # 朮 is zhú, the herb (白朮, 苍朮) and in 金兀朮, wherever it stands: 術 shù is written 术, never 朮. A rule
    # rather than a one-character lexicon entry, which would cost the lexicon a lookup at every position.
    ContextRule("herb zhu2", "朮", "zhu2", "", ""),
)

# --- particles and modals, told apart by the part of speech around them.
_VERB_AFTER_MODAL = "回|带|交|买|做|走|来|找|赶|准备|提前|早|问|想|写|学|干|吃|喝|睡|拿|打|跑|用|换|付|排|办|花|先|再"
_PARTICLE_RULES = (
    # 得 dei3 "must" after a noun, pronoun or adverb and before a verb (我得回家, 业务得带上身份证).
    ContextRule("modal dei3 before a verb", "得", "dei3", "", _VERB_AFTER_MODAL, previous_tag="[nrdt]"),
    # 得 de5 before a potential or result complement (吃得饱, 跑得动, 来得及).
    ContextRule(
        "complement de5", "得", "de5", f"(?<![就也都还总才又必])(?:{_HAN_NOT_SUBJECT})", "[饱动完住及清见透]|比"
    ),
    # 得 de5 between a verb and an adjective (洗得干净, 考得不错).
    ContextRule("complement de5", "得", "de5", "", "", previous_tag="v", next_tag="a"),
    # 为 wei4 "for" before a pronoun (为你高兴, 为您服务); 成为, 认为 and the like are words of their own.
    ContextRule("for wei4", "为", "wei4", "", "(?:你|您|他|她|我|大家|人民|孩子|老师)"),
    ContextRule(
        "purpose wei4",
        "为",
        "wei4",
        "(?<![评选称视作成认改变])",
        "(?:独居)?(?:员工|老人|孩子|学生|居民|群众|顾客|患者|病人|客户|大家|我们|他们|你们)",
    ),
    # 的 di1 in 打的, 摩的 "a taxi" (打的回去)
    ContextRule("taxi di1", "的", "di1", "[打摩]", f"[回去到来吧了走]|过去|上班|{_CLAUSE}"),
    # 呢 ni2 "woollen cloth" (呢大衣, 呢料)
    ContextRule("woollen ni2", "呢", "ni2", "", "[料子绒]|大衣|帽|制服|外套"),
    # 行 hang2 as a measure word of lines and rows (第三行, 排成一行); 一行人 is xing2.
    ContextRule(
        "rows hang2",
        "行",
        "hang2",
        "[一二两三四五六七八九十几每这那哪]",
        "(?![人程走动驶零一二两三四五六七八九十])",
        counts=True,
    ),
    # 重 zhong4 "heavy" and 长 chang2 "long" after a degree adverb (太重了, 又粗又长).
    ContextRule("graded zhong4", "重", "zhong4", f"{_DEGREE}|挺|最|好", ""),
    ContextRule("graded nan2", "难", "nan2", f"{_DEGREE}|挺|最|越来越", ""),
    ContextRule("long chang2", "长", "chang2", "又|也", "(?![高大胖了出])"),
    ContextRule("long chang2", "长", "chang2", "", "时间|途|篇|假|方形|跑|袖|发|筒|裤|廊"),
    # 场 chang2 counts weather and illness (三场雪, 一场大病); 一场比赛 is chang3.
    ContextRule("spell chang2", "场", "chang2", _COUNTED, "(?:大|暴|小)?(?:雨|雪|病|梦|战争|灾|风|冰雹|台风)"),
    # 地 de5 after an adverb of manner (迅速地, 一点一点地, 一对一地).
    ContextRule(
        "adverbial de5",
        "地",
        "de5",
        "一(.)一\\1|一点一点|迅速|逐步|逐渐|不停|默默|认真|仔细|耐心|热情|大声|小声|轻轻|飞快|快速|缓慢|稳步|积极|主动",
        f"(?![{_DI_NOUN}{PUNCTUATION}])",
    ),
    # 地 de5 after an adjective or an idiom used as an adverb (快乐地唱, 兴高采烈地说).
    ContextRule(
        "adverbial de5",
        "地",
        "de5",
        "(?<![就当本外])",
        f"(?![{_DI_NOUN}{PUNCTUATION}])",
        previous_tag="(?:a|ad|an|b|z|i|l|d)$",
    ),
    # 应 ying1 "should" before a verb, preposition or adverb (儿童应在成人监护下使用); 应邀, 答应 are ying4.
    ContextRule("modal ying1", "应", "ying1", "", "(?![了声])", next_tag="[vpd]"),
    # 差 cha4 and 横 heng4 as adjectives after a degree adverb (服务太差, 说话太横).
    ContextRule("graded cha4", "差", "cha4", f"{_DEGREE}|挺|最", ""),
    ContextRule("graded heng4", "横", "heng4", f"{_DEGREE}|挺|最|可|还", f"(?![^{PUNCTUATION}]{{0,2}}[线竖])"),
    ContextRule("rude heng4", "横", "heng4", "", "什么|得很|得不"),  # 你跟我横什么
    # 哦 and 哩 ending a clause after a word are modal particles, toneless like 吧 and 啊 (要来哦, 做哩！);
    # 哦 ò "oh" opens one (哦，我懂了), and 哩 lǐ "mile" follows a numeral (二十哩).
    ContextRule("final particle o5", "哦", "o5", "[\u4e00-\u9fff]", f"{_CLAUSE}|[!?！？…]"),
    ContextRule(
        "final particle li5", "哩", "li5", f"(?![{_COUNTED_CHARS}英公海])[\u4e00-\u9fff]", f"{_CLAUSE}|[!?！？…]"
    ),
)

# --- surnames: before a title, the character is a family name (朴先生 piao2).
_TITLE = "先生|女士|小姐|老师|教授|教练|医生|总统|经理|同学|某|姓"
_SURNAME_RULES = (
    ContextRule("surname piao2", "朴", "piao2", "", _TITLE),
    ContextRule("surname piao2", "朴", "piao2", "姓", ""),
    ContextRule("surname zeng1", "曾", "zeng1", "", _TITLE),
    ContextRule("surname zeng1", "曾", "zeng1", "姓", ""),
    ContextRule("surname hua4", "华", "hua4", "姓", ""),
    ContextRule("surname hua4", "华", "hua4", "", _TITLE),
    ContextRule("surname ge3", "葛", "ge3", "", _TITLE),
)

# --- colloquial readings of characters standing alone as words; compounds keep the literary reading.
_STANDING_ALONE = {  # character: (its colloquial reading, what may follow it)
    "削": ("xiao1", ""),  # 削苹果
    "剥": ("bao1", ""),  # 剥蒜
    "塞": ("sai1", "[进满住上给了到在入着回下]"),  # 塞满, 塞进; a name starting 塞 (塞西尔) goes on otherwise
    "汗": ("han4", ""),  # 一身汗
    "薄": ("bao2", f"{_CLAUSE}|[的了些点一得地越]"),  # 擀得越薄越好; 薄弱, 单薄 are bo2
    "累": ("lei4", "(?![年月日次代世转迁计积])"),  # 累得直喘气; 积累, 累计, 累年 are lei3
    "脏": ("zang1", ""),  # 屏幕脏了; 心脏, 内脏 are zang4
    "咽": ("yan4", "[不下了口进]"),  # 咽不下; 咽喉, 咽炎, 咽部 are yan1
    "没": ("mei2", "(?![过顶入落收])"),  # 没抓到, 没了; 没过膝盖, 没顶 are mo4
    "胖": ("pang4", ""),  # 头大体胖; 胖 pán is only in 心广体胖
}
_NOT_A_NAME = "(?!nr|ns|nz|nt|x)"  # transliterated names are where these characters keep other readings (圣何塞)
_STANDING_ALONE_RULES = tuple(
    ContextRule(f"alone {reading}", char, reading, "", after, previous_tag=_NOT_A_NAME, alone=True)
    for char, (reading, after) in _STANDING_ALONE.items()
)


CONTEXT_RULES: tuple[ContextRule, ...] = (
    # 得 dei3 "must": a modal after a subject or at a clause start, before a verb phrase (你得好好学习).
    ContextRule(
        "modal dei3",
        "得",
        "dei3",
        f"{_CLAUSE}|{_SUBJECT}|还|就|也|都|总",
        "好好|赶紧|赶快|马上|立刻|立即|先|再|去(?!年|世)|走|小心|注意|抓紧|想办法|跟|把|给|让|花|等|靠|重新|起床",
    ),
    # 得 de5: the structural particle between a verb or adjective and its degree complement (跑得很快).
    ContextRule("complement de5", "得", "de5", _HAN_NOT_SUBJECT, _DEGREE),
    # 地 de5: the adverbial particle after a reduplicated word or an adverbial suffix (慢慢地, 历史性地).
    ContextRule("adverbial de5", "地", "de5", _ADVERBIAL, f"(?![{_DI_NOUN}])"),
    # 长 chang2 "long" after a degree adverb (很长); 长 zhang3 "grow" is not graded that way.
    ContextRule("graded chang2", "长", "chang2", f"{_DEGREE}|最|挺|好|多", "(?![见知脸进大高得出成胖个肉芽势])"),
    # 为 wei4 "for the sake of": a beneficiary then a verb of serving (为人民服务, 为国效力).
    ContextRule(
        "beneficiary wei4",
        "为",
        "wei4",
        f"{_CLAUSE}|{_SUBJECT}|要|应|愿|肯|在|都|也|还|就|又|曾|将|正|专门|一心|努力|继续|忙着|不必|何必|别|不要",
        f"[^{PUNCTUATION}]{{0,8}}?(?:服务(?![器业站商费])|效力|效劳|奋斗|着想|操心|担心|骄傲|自豪|牺牲|献身|捐躯|而战|争光"
        "|生气|着急|发愁|难过|伤心|感动|加油|鼓掌|欢呼|祈祷|送去|送来|找)",
    ),
    # 数 shu3 "count": a verb with an aspect particle or a count complement (我数了三遍).
    ContextRule(
        "counting shu3",
        "数",
        "shu3",
        f"{_CLAUSE}|{_SUBJECT}|再|又|也|都|还|就|先|仔细|认真|在|不|没",
        "了|过|着|一数|一下|一遍|到|完|不清|不过来",
    ),
    # 切 qie1 "cut", before a result or what is cut (切开, 切成块); not 一切, 密切, 亲切 and the like (qie4).
    ContextRule(
        "cutting qie1",
        "切",
        "qie1",
        "(?<![一密亲迫急确真恳贴关殷悲凄深热])",
        "开|成|断|碎|片|下|掉|好|菜|肉|丝|块|面包|蛋糕|西瓜|苹果",
    ),
    # 背 bei1 "carry on the back", with a load (背着一个大包); 背着 alone may be bei4 "behind one's back".
    ContextRule(
        "carrying bei1",
        "背",
        "bei1",
        "",
        "着(?:一|两|三|几|个|只|把|袋|包|书包|行李|背包|孩子|枪|筐)|[起上](?:书包|行李|背包|行囊|孩子|枪)",
    ),
    # 弄 nong4 "make, handle" is a verb and takes results (弄干, 弄清楚); 弄 long4 "lane" is a noun (里弄).
    ContextRule("handling nong4", "弄", "nong4", "", "[干清坏脏乱丢错懂明湿断死伤成到出得不了好]|什么|啥"),
    # 刨 pao2 "dig" before what is dug up (刨坑, 刨出); 刨 bao4 is the carpenter's plane.
    ContextRule("digging pao2", "刨", "pao2", "", "[坑土地出根坟洞]"),
    # 撒 sa3 "sprinkle, scatter" before where it lands (撒在, 撒上); 撒 sa1 "let go" is in 撒手, 撒谎.
    ContextRule("sprinkling sa3", "撒", "sa3", "", "[在上满入到落向遍些点]"),
    # 铺 pu1 "spread" before a place or result (铺上, 铺在); 铺 pu4 "shop, bunk" is a noun.
    ContextRule(
        "spreading pu1",
        "铺",
        "pu1",
        "",
        "[上满在开成平好]|木?地板|地毯|瓷砖|床单|一下|[一两三四五六七八九十几]+公里|路面",
    ),
    *_MEASURE_WORD_RULES,
    *_COLLOCATION_RULES,
    *_PARTICLE_RULES,
    *_SURNAME_RULES,
    *_STANDING_ALONE_RULES,
)
_RULES_BY_CHAR: dict[str, tuple[ContextRule, ...]] = {
    char: tuple(rule for rule in CONTEXT_RULES if rule.char == char) for char in {r.char for r in CONTEXT_RULES}
}


RULE_CHARACTERS = frozenset(_RULES_BY_CHAR)


def matching_rule(
    text: str,
    position: int,
    evidence: Evidence | None = None,
    previous_word: str = "",
    next_word: str = "",
    alone: bool = False,
) -> ContextRule | None:
    """The context rule that settles the character at `position` of `text`, or None.

    `previous_word` and `next_word` are the words around the character's own word (for the tag conditions);
    `alone` says whether the character stands alone: a word of its own, or the first character of a word that
    no phrase dictionary knows (削得, 剥几瓣, 塞进).
    A rule never contradicts a phrase dictionary's reading of the word the character is in (获得, 地方, 长宁):
    it only settles what the model would decide, and the model is least reliable on short everyday sentences.
    """
    before = ("。" + text)[max(0, position + 1 - _WINDOW) : position + 1]  # the text's start is a boundary
    after = (text + "。")[position + 1 : position + 1 + _WINDOW]
    for rule in _RULES_BY_CHAR.get(text[position], ()):
        before_pattern, after_pattern = rule.patterns
        agrees = evidence is None or evidence.reading == rule.reading or _weak(evidence, rule)
        if not (agrees and before_pattern.search(before) and after_pattern.match(after)):
            continue
        if rule.alone and not alone:
            continue
        if rule.previous_tag and not _tag_matches(rule.previous_tag, previous_word):
            continue
        if rule.next_tag and not _tag_matches(rule.next_tag, next_word):
            continue
        return rule
    return None


def _weak(evidence: Evidence, rule: ContextRule) -> bool:
    """Dictionary evidence that `rule` may overrule: any, for a rule about a form the dictionaries do not see
    (唱片儿), and a numeral-and-measure word for a measure-word rule (一行: the dictionary gives the reading of
    一行人, while the counted 一行字 and 第三行 are hang2)."""
    if rule.over_words:
        return True
    return rule.counts and len(evidence.word) == 2 and evidence.word[0] in _COUNTED_CHARS


def _tag_matches(pattern: str, word: str) -> bool:
    tag = "w" if word in PUNCTUATION else word_tag(word)  # w: a punctuation mark (jieba has none for them)
    return bool(word) and _compiled_tag(pattern).match(tag) is not None


@cache
def _compiled_tag(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
