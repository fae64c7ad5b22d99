//! Person names, found only with context: a name-like word is a name when a cue says
//! so ("联系人：", "客户", "先生", "Dear ", "Customer ", a JSON `"name"` key). Chinese
//! names are a surname from the common list (compound surnames first) plus one or two
//! given-name characters; English names are two capitalised words.

/// Compound surnames, tried before single ones.
const COMPOUND: &[&str] = &[
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "夏侯", "令狐", "澹台", "轩辕", "单于", "百里", "南宫", "西门", "独孤", "端木", "呼延", "闻人",
    "万俟", "申屠", "太史", "赫连", "钟离", "拓跋",
];

/// Common single-character surnames (the most frequent ~200 in mainland China).
const SINGLE: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝";

/// Words that say the next word is a person, in Chinese.
const ZH_CUES: &[&str] = &[
    "联系人",
    "姓名",
    "客户",
    "用户",
    "收件人",
    "寄件人",
    "经办人",
    "负责人",
    "持卡人",
    "申请人",
    "投诉人",
    "报案人",
    "乘客",
    "患者",
    "顾客",
    "会员",
    "业主",
    "租户",
    "法人",
    "法定代表人",
    "开户人",
    "户名",
    "收款人",
    "付款人",
    "联系人姓名",
    "客户姓名",
    "@",
];

/// The same in English (compared case-insensitively, as the last word or the last
/// segment of a dotted/underscored key such as `admin.contact` or `contact_name`).
const EN_CUES: &[&str] = &[
    "customer",
    "contact",
    "name",
    "fullname",
    "dear",
    "hi",
    "hello",
    "assignee",
    "reporter",
    "cardholder",
    "holder",
    "regards",
    "cc",
    "from",
    "to",
    "mr",
    "ms",
    "mrs",
    "dr",
    "agent",
    "owner",
    "requester",
    "applicant",
    "user",
    "by",
    "signed",
    "attn",
    "recipient",
    "sender",
    "payer",
    "payee",
    "manager",
    "operator",
];

/// Whether the text before a candidate name ends with a cue (and separators).
fn has_cue(before: &str) -> bool {
    let t = before.trim_end_matches([
        ' ', ':', '：', '=', '(', '（', '"', '\'', ',', '，', '、', '\t',
    ]);
    if ZH_CUES.iter().any(|c| t.ends_with(c)) {
        return true;
    }
    if t.len() == before.len() {
        // English cue words need a separator before the name.
        return false;
    }
    let word_start = t
        .rfind(|c: char| !(c.is_ascii_alphabetic() || c == '.' || c == '_'))
        .map_or(0, |p| p + t[p..].chars().next().map_or(1, char::len_utf8));
    let word = t.get(word_start..).unwrap_or("").trim_end_matches('.');
    let last = word.rsplit(['.', '_']).next().unwrap_or(word);
    EN_CUES
        .iter()
        .any(|c| last.eq_ignore_ascii_case(c) || word.eq_ignore_ascii_case(c))
}

/// Words that, right after a name, confirm it.
const ZH_CUES_AFTER: &[&str] = &["先生", "女士", "小姐", "老师", "同学"];

/// Characters that start the words commonly following a name; a two-character given
/// name is not taken when its second character starts one of these words.
const ZH_STOP_AFTER: &[&str] = &[
    "反馈", "来电", "表示", "的", "于", "称", "先生", "女士", "小姐", "已", "在", "说", "要", "想",
    "把", "和", "与", "及", "等", "都", "也", "还", "就", "对", "向", "给", "从", "被", "让", "请",
    "您", "你", "我", "他", "她", "是", "有", "没", "不", "来", "去", "到", "反映", "咨询", "投诉",
    "申请", "办理", "提交", "今日", "今天", "昨天", "致电", "来信", "留言", "回复", "确认", "签收",
    "收到", "登录", "下单", "支付", "退款", "（", "(",
];

fn is_cjk(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c)
}

const CJK_FIRST: u32 = 0x4E00;
const CJK_SPAN: usize = 0x9FFF - 0x4E00 + 1;

/// Bit sets over the CJK block: single surnames, and first characters of compound
/// ones. Built once; a look-up is one shift and mask (this runs on every CJK character).
struct SurnameIndex {
    single: Vec<u64>,
    compound_first: Vec<u64>,
}

fn index() -> &'static SurnameIndex {
    static INDEX: std::sync::OnceLock<SurnameIndex> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut single = vec![0u64; CJK_SPAN.div_ceil(64)];
        let mut compound_first = vec![0u64; CJK_SPAN.div_ceil(64)];
        let set = |bits: &mut Vec<u64>, c: char| {
            if let Some(k) = (c as u32)
                .checked_sub(CJK_FIRST)
                .and_then(|k| usize::try_from(k).ok())
            {
                if let Some(w) = bits.get_mut(k / 64) {
                    *w |= 1 << (k % 64);
                }
            }
        };
        for c in SINGLE.chars() {
            set(&mut single, c);
        }
        for c in COMPOUND.iter().filter_map(|s| s.chars().next()) {
            set(&mut compound_first, c);
        }
        SurnameIndex {
            single,
            compound_first,
        }
    })
}

fn in_set(bits: &[u64], c: char) -> bool {
    (c as u32)
        .checked_sub(CJK_FIRST)
        .and_then(|k| usize::try_from(k).ok())
        .and_then(|k| bits.get(k / 64).map(|w| w & (1 << (k % 64)) != 0))
        .unwrap_or(false)
}

/// A surname at the start of `s`: its length in bytes.
fn surname(s: &str) -> Option<usize> {
    let c = s.chars().next()?;
    let idx = index();
    if in_set(&idx.compound_first, c) {
        if let Some(c) = COMPOUND.iter().find(|c| s.starts_with(**c)) {
            return Some(c.len());
        }
    }
    in_set(&idx.single, c).then_some(c.len_utf8())
}

/// A Chinese name starting at byte `i` of `line`, if a cue confirms it.
pub fn chinese_name(line: &str, i: usize) -> Option<usize> {
    let rest = line.get(i..)?;
    let sl = surname(rest)?;
    let after_surname = rest.get(sl..)?;
    let mut given = after_surname.chars();
    let g1 = given.next().filter(|c| is_cjk(*c))?;
    let one = sl + g1.len_utf8();
    let two = given
        .next()
        .filter(|c| is_cjk(*c))
        .map(|c| one + c.len_utf8())
        .filter(|_| {
            let tail = rest.get(one..).unwrap_or("");
            !ZH_STOP_AFTER.iter().any(|w| tail.starts_with(w))
        });
    let len = two.unwrap_or(one);
    let before = line.get(..i).unwrap_or("");
    let after = rest.get(len..).unwrap_or("");
    let confirmed = has_cue(before) || ZH_CUES_AFTER.iter().any(|w| after.starts_with(w));
    confirmed.then_some(i + len)
}

fn cap_word(b: &[u8], i: usize) -> Option<usize> {
    let first = *b.get(i)?;
    if !first.is_ascii_uppercase() {
        return None;
    }
    let mut j = i + 1;
    while b.get(j).is_some_and(u8::is_ascii_lowercase) {
        j += 1;
    }
    (2..=15).contains(&(j - i)).then_some(j)
}

/// An English (or pinyin) "First Last" name at byte `i`, after a cue.
pub fn english_name(line: &str, i: usize) -> Option<usize> {
    // The shape first (cheap), the cue only for two capitalised words.
    let b = line.as_bytes();
    let first = cap_word(b, i)?;
    if b.get(first) != Some(&b' ') {
        return None;
    }
    let last = cap_word(b, first + 1)?;
    if b.get(last).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    has_cue(line.get(..i)?).then_some(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_names_need_a_cue() {
        let line = "联系人：欧阳娜娜反馈";
        let i = line.find('欧').unwrap();
        assert_eq!(chinese_name(line, i), Some(i + "欧阳娜娜".len()));
        let line = "客户张伟反馈退款";
        let i = line.find('张').unwrap();
        assert_eq!(chinese_name(line, i), Some(i + "张伟".len()));
        let line = "王芳女士来电";
        assert_eq!(chinese_name(line, 0), Some("王芳".len()));
        let line = "今天王府井很热闹";
        let i = line.find('王').unwrap();
        assert_eq!(chinese_name(line, i), None, "no cue, no name");
    }

    #[test]
    fn english_names_need_a_cue() {
        assert_eq!(english_name("Dear John Smith,", 5), Some(15));
        assert_eq!(english_name("The Great Wall", 4), None);
    }
}
