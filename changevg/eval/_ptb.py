"""Pure-Python PTB tokenisation as pycocoevalcap applies it (no Java needed).

pycocoevalcap's ``PTBTokenizer`` joins every caption of one side (all references, or all
predictions) with ``"\\n"``, runs Stanford CoreNLP 3.4.1's ``PTBTokenizer -preserveLines
-lowerCase`` over that text, and drops the tokens in :data:`PUNCTUATIONS`.  This module
re-implements the subset of CoreNLP's JFlex lexer (``PTBLexer.flex``) that English captions
exercise, with JFlex's longest-match rule, so scores equal pycocoevalcap's without a JVM.
Rules follow the 2009-2017 ``PTBLexer.flex`` sources, adjusted until the output equalled
``stanford-corenlp-3.4.1.jar`` on hundreds of thousands of random caption-like and
symbol-soup strings (ASCII, curly quotes, dashes, accents, CJK, symbols) without a difference.

Known deviations (none occur in ordinary captions): emoji and rarer symbol blocks may be
handled differently; carriage returns and other line separators inside a caption become
spaces here, whereas pycocoevalcap would shift every following caption by one line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

__all__ = ["PUNCTUATIONS", "ptb_tokenize"]

#: Tokens pycocoevalcap removes after tokenisation (matched case-sensitively, after
#: lowercasing, so ``-lrb-`` and friends survive exactly as they do there).
PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-",
     "--", "...", ";"]
)  # fmt: skip

# --- JFlex macros (%caseless: literals ignore case, character classes do not) ---------------
# Python's \w also covers numeric symbols (No/Nl: "½", "²", "Ⅻ") that Java's isLetter rejects.
_NOT_LETTER = r"\u00B2\u00B3\u00B9\u00BC-\u00BE\u2070-\u209F\u2150-\u218F\u2460-\u24FF\u2776-\u2793"
_L = rf"[^\W\d_{_NOT_LETTER}]"  # [:letter:]
_AN = rf"[^\W_{_NOT_LETTER}]"  # letter or digit
_D = r"\d"
_LETTER = rf"(?:{_L}|&[aeiouAEIOU](?:acute|grave|uml);|[\u00AD\u0300-\u036F])"
_SPACE = r"[ \t\u00A0\u2000-\u200A\u3000]"
_NEWLINE = r"\n"  # other line separators are mapped to spaces before lexing
_SPACENL = rf"(?:{_SPACE}|{_NEWLINE})"
_UPPER = r"(?-i:[A-Z\u00C0-\u00D6\u00D8-\u00DE])"
_APOS = r"(?:['\u0092\u2019]|&apos;)"
_APOSETC = rf"(?:{_APOS}|[`\u0091\u2018\u201B])"
_SGML = (
    r"<(?:[!?][A-Za-z\-][^>\r\n]*|[A-Za-z][A-Za-z0-9_:.\-]*(?:[ ]+(?:[A-Za-z][A-Za-z0-9_:.\-]*"
    r"|[A-Za-z][A-Za-z0-9_:.\-]*[ ]*=[ ]*(?:'[^'\r\n]*'|\"[^\"\r\n]*\"|[A-Za-z][A-Za-z0-9_:.\-]*)"
    r"))*[ ]*/?|/[A-Za-z][A-Za-z0-9_:.\-]*)[ ]*>"
)
_WORD = rf"{_LETTER}(?:{_LETTER}|{_D})*(?:[.!?]{_LETTER}(?:{_LETTER}|{_D})*)*"
_REDAUX = rf"{_APOS}(?:[msdMSD]|re|ve|ll)"
_SWORD = r"[A-Za-z\u00AD]*[A-MO-Za-mo-z]\u00AD*"
_SREDAUX = rf"n{_APOSETC}t"
_NUM_A = rf"{_D}+"
_NUM_B = rf"{_D}*(?:[.:,\u00AD\u066B\u066C]{_D}+)+"
_ACRO_US = r"(?:Canada|Sino|Korean|EU|Japan|non)-U\.S|U\.S\.-(?:U\.K|U\.S\.S\.R)"
_ACRO = rf"(?:[A-Za-z](?:\.[A-Za-z])*|{_ACRO_US})"
_ACRO2 = rf"(?:[A-Za-z](?:\.[A-Za-z])+|{_ACRO_US})"
_ABBREV1 = (
    r"(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Mon|Tue|Tues|Wed|Thu|Thurs|Fri"
    r"|Ala|Ariz|(?-i:A)z|(?-i:A)rk|Calif|Colo|Conn|Ct|Dak|(?-i:D)el|Fla|Ga|(?-i:I)ll|Ind|Kans?|Ky"
    r"|(?-i:L)a|(?-i:M)ass|Md|Mich|Minn|(?-i:M)iss|Mo|Mont|Neb|Nev|Okla|(?-i:O)re|(?-i:P)a|Penn"
    r"|Tenn|(?-i:T)ex|Va|Vt|(?-i:W)ash|Wisc?|Wyo|Inc|Cos?|Corp|Pp?t[yeYE]s?|Ltd|Plc|Rt|Bancorp"
    r"|Bhd|Assn|Univ|Intl|Sys|tel|est|ext|sq|Jr|Sr|Bros|(?:Ed|Ph)\.D|Blvd|Rd|Esq|etc|al|seq"
    r"|Bldg)\."
)
_ABBREV4 = (
    r"(?:Mr|Mrs|Ms|(?-i:M)iss|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev"
    r"|Maj|Sgt|Cpl|Pvt|Capt|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det|Mt|Ft|Adj"
    r"|Adv|Asst|Assoc|Ens|Insp|Mlle|Mme|Msgr|Sfc|vs|(?-i:v)|Alex|Wm|Jos|Cie|a\.k\.a|cf|TREAS"
    rf"|Ph|{_ACRO}|Invt|Elec|Natl|M[ftFT]g|Dept)"
)
_ACRO_FOLLOWERS = (
    r"(?:(?-i:A)bout|(?-i:A)ccording|(?-i:A)dditionally|(?-i:A)fter|(?-i:A)n|(?-i:A)|(?-i:A)s"
    r"|(?-i:A)t|(?-i:B)ut|(?-i:E)arlier|(?-i:H)e|(?-i:H)er|(?-i:H)ere|(?-i:H)owever|(?-i:I)f"
    r"|(?-i:I)n|(?-i:I)t|(?-i:L)ast|(?-i:M)any|(?-i:M)ore|(?-i:M)r\.|(?-i:M)s\.|(?-i:N)ow"
    r"|(?-i:O)nce|(?-i:O)ne|(?-i:O)ther|(?-i:O)ur|(?-i:S)he|(?-i:S)ince|(?-i:S)o|(?-i:S)ome"
    r"|(?-i:S)uch|(?-i:T)hat|(?-i:T)he|(?-i:T)heir|(?-i:T)hen|(?-i:T)here|(?-i:T)hese|(?-i:T)hey"
    rf"|(?-i:T)his|(?-i:W)e|(?-i:W)hen|(?-i:W)hile|(?-i:W)hat|(?-i:Y)et|(?-i:Y)ou|{_SGML})"
)
_HTHING = rf"[A-Za-z0-9][A-Za-z0-9.,\u00AD]*(?:-(?:{_ACRO2}\.|[A-Za-z0-9\u00AD]+))+"
_THING_PART = rf"(?:(?-i:[dDoOlL]){_APOSETC}{_AN})?{_AN}+"
_THING = rf"{_THING_PART}(?:[-_\u058A\u2010\u2011]{_THING_PART})*"
_THINGA = r"(?-i:[A-Z])+(?:(?:[+&]|&amp;)(?-i:[A-Z])+)+"
# Alternatives that can overlap are separate rules, so that the longest one wins as in JFlex.
_QUOTES = [_APOS, "''", r"[`\u2018-\u201F\u0082\u0084\u0091-\u0094\u2039\u203A\u00AB\u00BB]{1,2}"]
_APOWORD = [
    rf"{_APOS}n{_APOS}?", rf"(?-i:[lLdDjJ]){_APOS}", rf"Dunkin{_APOS}", rf"somethin{_APOS}",
    rf"ol{_APOS}", rf"{_APOS}em", rf"(?-i:[A-HJ-XZn]){_APOSETC}{_L}{{2}}{_L}*",
    rf"{_APOS}[2-9]0s", rf"{_APOS}till?",
    rf"{_L}+(?-i:[aeiouyAEIOUY]){_APOSETC}(?-i:[aeiouA-Z]){_L}*",
    rf"{_APOS}cause", r"cont'd\.?", "nor'easter", "c'mon", "e'er", "s'mores", "ev'ry", "li'l",
    "nat'l", rf"O{_APOSETC}o",
]  # fmt: skip
_FILENAME = (
    rf"(?:{_LETTER}|{_D})+(?:\.(?:{_LETTER}|{_D})+)*\.(?:bat|bmp|bz2|c|class|cgi|cpp|dll|doc|docx"
    r"|exe|gif|gz|h|htm|html|jar|java|jpeg|jpg|mov|mp3|pdf|php|pl|png|ppt|ps|py|sql|tar|txt|wav|x|xml|zip|3gp|wm[va]"
    r"|avi|flv|mov|mp[34g])"
)
_ASIAN_SMILEYS = [
    r"[\-^x=~<>']_[\-^x=~<>']",
    r"\([\-^x=~<>'][_.]?[\-^x=~<>']\)",
    r"\([\^x=~<>']-[\^x=~<>'`]\)",
]
# JFlex never case-folds character classes: "[^,-_]" admits "f" although "F" lies in ",-_".
_URL_HOSTS = [
    r"www\.(?:(?-i:[^ \t\n\f\r\"<>|.!?(){},])+\.)+[a-zA-Z]{2,4}",
    r"(?:(?-i:[^ \t\n\f\r\"`'<>|.!?(){},-_$])+\.)+(?:com|net|org|edu)",
]
_URL_PATH = r"(?:/(?-i:[^ \t\n\f\r\"<>|()])+(?-i:[^ \t\n\f\r\"<>|.!?(){},-]))?"
_DBLQUOT = r"(?:\"|&quot;)"
_MISC = (
    r"(?-i:[+%&~^|\\\u00A6\u00A7\u00A8\u00A9\u00AC\u00AE\u00AF\u00B0-\u00BA\u00D7\u00F7\u0387"
    r"\u2016\u2017\u2020-\u2025\u2030-\u2038\u203B\u203C\u2043\u203E-\u2042\u2044\u207A-\u207F"
    r"\u208A-\u208E\u2100-\u214F\u2190-\u21FF\u2200-\u2BFF\u3001-\u3006\u3008-\u3020\u30FB"
    r"\uFF01-\uFF0F\uFF1A-\uFF20\uFF3B-\uFF40\uFF5B-\uFF65])"
)
_SUBSUPNUM = (
    r"[\u207A\u207B\u208A\u208B]?(?:[\u2070\u00B9\u00B2\u00B3\u2074-\u2079]+|[\u2080-\u2089]+)"
)
_CURRENCY = r"[\u00A2-\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0\uFFE1\uFFE5\uFFE6]"
_PHONE = (
    r"(?:\([0-9]{2,3}\)[ \u00A0]?|(?:\+\+?)?(?:[0-9]{2,4}[\- \u00A0])?[0-9]{2,4}[\- \u00A0])"
    r"[0-9]{3,4}[\- \u00A0]?[0-9]{3,5}"
    r"|(?:(?:\+\+?)?[0-9]{2,4}\.)?[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}"
)


# --- actions: (matched token text) -> (emitted tokens, characters consumed) ----------------
Action = Callable[[str], tuple[list[str], int]]


def _keep(t: str) -> tuple[list[str], int]:
    return [t], len(t)


def _keep_soft(t: str) -> tuple[list[str], int]:
    """Words drop soft hyphens (CoreNLP's ``removeSoftHyphens``)."""
    return [t.replace("\u00ad", "")], len(t)


def _const(s: str) -> Action:
    return lambda t: ([s], len(t))


def _pushback(n: int) -> Action:
    return lambda t: ([t[:-n]], len(t) - n)


def _latex_quotes(t: str, left: bool) -> str:
    """CoreNLP's ``latexQuotes``: map straight and curly quotes to `` ` `` / `` ' `` forms."""
    t = re.sub(r"&apos;|'", "`" if left else "'", t)
    t = re.sub(r"\"|&quot;", "``" if left else "''", t)
    t = re.sub("[\u0091\u2018\u201b\u2039]", "`", t)
    t = re.sub("[\u0092\u2019\u203a]", "'", t)
    t = re.sub("[\u0093\u201c\u00ab]", "``", t)
    return re.sub("[\u0094\u201d\u00bb]", "''", t)


def _quotes(left: bool) -> Action:
    return lambda t: ([_latex_quotes(t, left)], len(t))


def _spaces_to_nbsp(t: str) -> tuple[list[str], int]:
    return [re.sub(r"[ \n]", "\u00a0", t)], len(t)


def _phone(t: str) -> tuple[list[str], int]:
    return [t.replace(" ", "\u00a0").replace("(", "-LRB-").replace(")", "-RRB-")], len(t)


def _dup_period(t: str) -> tuple[list[str], int]:
    """``Abbrev.`` before a sentence end: emit it and re-read its period as a ``.`` token."""
    return [t], len(t) - 1


def _acronym(t: str) -> tuple[list[str], int]:
    return ([t[:-1]], 1) if len(t) == 2 else ([t], len(t) - 1)


def _hyphens(t: str) -> tuple[list[str], int]:
    return (["--"] if 3 <= len(t) <= 4 else [t]), len(t)


def _number(t: str) -> tuple[list[str], int]:
    return [re.sub("[\u00ad\u066c\u2009\u202f]", "", t).strip()], len(t)


def _amp(t: str) -> tuple[list[str], int]:
    return [re.sub(r"(?i)&amp;", "&", t)], len(t)


def _currency(t: str) -> tuple[list[str], int]:
    norm = t.replace("\u00a2", "cents").replace("\u00a3", "#")
    return [re.sub("[\u0080\u00a4\u20a0\u20ac]", "$", norm)], len(t)


_FRACTIONS = {"\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2153": "1/3", "\u2154": "2/3"}


def _smiley(t: str) -> tuple[list[str], int]:
    return [t.replace("(", "-LRB-").replace(")", "-RRB-")], len(t)


def _skip(t: str) -> tuple[list[str], int]:
    return [], len(t)


# Rule order breaks ties between equally long matches, exactly as in JFlex.  A rule's regex
# may end in trailing context; group "t" is the token, the whole match decides the length.
_RULES_SRC: list[tuple[str, Action]] = [
    (r"(?P<t>c\+\+|[cf]#)", _keep),
    (r"(?P<t>cannot|'twas)", _pushback(3)),
    (r"(?P<t>'tis|gonna|gotta|lemme|gimme|wanna)", _pushback(2)),
    (rf"(?P<t>{_SGML})", _spaces_to_nbsp),
    (r"(?P<t>&(?:MD|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015])", _const("--")),
    (r"(?P<t>&amp;)", _const("&")),
    (r"(?P<t>&(?:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);)", _keep),
    (rf"(?P<t>{_WORD}){_REDAUX}", _keep_soft),
    (rf"(?P<t>{_SWORD}){_SREDAUX}", _keep_soft),
    (rf"(?P<t>{_WORD})", _keep_soft),
    *[(rf"(?P<t>{alt})", _keep) for alt in _APOWORD],
    (rf"(?P<t>y{_APOS}){_L}", _keep),
    (
        r"(?P<t>(?:ftp|svn|svn\+ssh|http|https|mailto)://[^ \t\n\f\r\"<>|(){}\[\]]+"
        r"[^ \t\n\f\r\"'<>|.!?(){},;:&\[\]-])",
        _keep,
    ),
    *[(rf"(?P<t>{host}{_URL_PATH})", _keep) for host in _URL_HOSTS],
    (
        r"(?P<t>(?:&lt;|<)?[a-zA-Z0-9][^ \t\n\f\r\"<>|(){}\u00A0]*@"
        r"(?:[^ \t\n\f\r\"<>|(){}.\u00A0]+\.)*[^ \t\n\f\r\"<>|(){}.\u00A0]+(?:&gt;|>)?)",
        _keep,
    ),
    (r"(?P<t>[@\uFF20][a-zA-Z_][a-zA-Z_0-9]*)", _keep),
    (rf"(?P<t>[#\uFF03]{_LETTER}+)", _keep),
    (rf"(?P<t>{_REDAUX})[^A-Za-z]", _quotes(False)),
    (rf"(?P<t>{_SREDAUX})[^A-Za-z]", _quotes(False)),
    (rf"(?P<t>{_D}{{1,2}}[\-/]{_D}{{1,2}}[\-/]{_D}{{2,4}})", _keep),
    (rf"(?P<t>[\-+]?{_NUM_A})", _number),
    (rf"(?P<t>[\-+]?{_NUM_B})", _number),
    (rf"(?P<t>{_SUBSUPNUM})", _keep),
    (rf"(?P<t>(?:{_D}{{1,4}}[- \u00A0])?{_D}{{1,4}}(?:\\?/|\u2044){_D}{{1,4}})", _spaces_to_nbsp),
    (r"(?P<t>[\u00BC\u00BD\u00BE\u2153-\u215E])", lambda t: ([_FRACTIONS.get(t, t)], 1)),
    (
        rf"(?P<t>-(?:RRB|LRB|RCB|LCB|RSB|LSB)-|C\.D\.s|pro-|anti-|S(?:&|&amp;)P-500"
        rf"|S(?:&|&amp;)Ls|Cap{_APOS}n|c{_APOS}est)",
        _amp,
    ),
    (r"(?P<t>[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2})", _keep),
    (r"(?P<t>(?-i:[A-Z])*\$|#)", _keep),
    (rf"(?P<t>{_CURRENCY})", _currency),
    (rf"(?P<t>{_ACRO}\.){_SPACENL}+{_ACRO_FOLLOWERS}{_SPACENL}", _acronym),
    (rf"(?P<t>(?:ca|figs?|prop|nos?|art|bldg|pp|op)\.){_SPACENL}?{_D}", _keep),
    (rf"(?P<t>(?:pt[eyEY]|co)\.){_SPACE}(?:ltd|lim)", _keep),
    (rf"(?P<t>{_ABBREV1}){_SPACENL}(?:{_SPACENL}|{_UPPER}|{_SGML})", _dup_period),
    (rf"(?P<t>{_ABBREV1})[\s\S][\s\S]", _keep),
    (rf"(?P<t>{_ABBREV1})", _dup_period),
    (rf"(?P<t>{_ABBREV4}\.)", _keep),
    (rf"(?P<t>{_ABBREV4}){_SPACE}", _keep),
    (rf"(?P<t>{_ACRO}){_SPACENL}", _keep),
    (rf"(?P<t>{_APOS}[0-9][0-9]){_SPACENL}", _keep),
    (rf"(?P<t>{_FILENAME})(?:{_SPACENL}|[.?!,])", _keep),
    (rf"(?P<t>{_WORD}\.)[,;:\u3001]", _keep_soft),
    (rf"(?P<t>{_PHONE})", _phone),
    (rf"(?P<t>{_DBLQUOT})(?:[^\W_]|\$)", _quotes(True)),
    (rf"(?P<t>{_DBLQUOT})", _quotes(False)),
    (r"(?P<t>\x7F)", _skip),
    (r"(?P<t><|&lt;)", _const("<")),
    (r"(?P<t>>|&gt;)", _const(">")),
    (r"(?P<t>(?-i:[<>]?[:;=][\-o*']?[()DPdpO\\{@|\[\]]))[^A-Za-z0-9]", _smiley),
    *[(rf"(?P<t>(?-i:{alt}))", _smiley) for alt in _ASIAN_SMILEYS],
    (r"(?P<t>\{)", _const("-LCB-")),
    (r"(?P<t>\})", _const("-RCB-")),
    (r"(?P<t>\[)", _const("-LSB-")),
    (r"(?P<t>\])", _const("-RSB-")),
    (r"(?P<t>\()", _const("-LRB-")),
    (r"(?P<t>\))", _const("-RRB-")),
    (r"(?P<t>-+)", _hyphens),
    (r"(?P<t>\.{3,5}|(?:\.[ \u00A0]){2,4}\.|[\u0085\u2026])", _const("...")),
    (r"(?P<t>@+|#+|_+)", _keep),
    (r"(?P<t>\*+|(?:\\\*){1,3})", _keep),
    (r"(?P<t>[,;:\u3001])", _keep),
    (r"(?P<t>[?!]+)", _keep),
    (r"(?P<t>[.\u00A1\u00BF\u037E\u0589\u061F\u06D4\u0700-\u0702\u07FA\u3002])", _keep),
    (r"(?P<t>=)", _keep),
    (r"(?P<t>/)", _keep),
    (rf"(?P<t>{_HTHING}\.)[,;:\u3001]", _keep_soft),
    (rf"(?P<t>{_HTHING})", _keep_soft),
    (rf"(?P<t>{_THING}\.)[,;:\u3001]", _keep),
    (rf"(?P<t>{_THING})", _keep),
    (rf"(?P<t>{_THINGA}\.)[,;:\u3001]", _amp),
    (rf"(?P<t>{_THINGA})", _amp),
    (r"(?P<t>')[A-Za-z][^ \t\n\r\u00A0]", _quotes(True)),
    *[(rf"(?P<t>{q})", _quotes(False)) for q in _QUOTES],
    (rf"(?P<t>{_REDAUX})", _quotes(False)),
    (rf"(?P<t>{_SREDAUX})", _quotes(False)),
    (r"(?P<t><<|>>)", _keep),
    (rf"(?P<t>{_MISC})", _keep),
    (rf"(?P<t>\x00|{_SPACE}+|[\u200B\u200E\u200F\uFEFF]|&nbsp;)", _skip),
]
_RULES = [(re.compile(src, re.IGNORECASE), action) for src, action in _RULES_SRC]
_OTHER_NEWLINES = re.compile("\r\n|[\r\u2028\u2029\x0b\x0c\x85]")
# Fast path, equivalent to running all rules: a plain ASCII word before whitespace can only be
# a WORD (or an equally long ABBREV4/ACRO with the same text), bar the assimilations below.
_FAST = re.compile(r"([A-Za-z]+)(?=[ \t\n]|\Z)|[ \t]+")
_ASSIMILATIONS = frozenset({"cannot", "gonna", "gotta", "lemme", "gimme", "wanna"})
# How much of the following lines can change a line's tokens: CoreNLP's cross-line trailing
# contexts are an SGML tag or at most a 13-character word (ACRONYM followers) after spaces.
_RIGHT_CONTEXT = re.compile(r"\s*(?:<[^\n>]*>?|\S{0,16})\s?")


def _lex(text: str) -> list[list[str]]:
    """Tokenise ``text`` (lines joined by ``\\n``) into one token list per line."""
    lines: list[list[str]] = [[]]
    pos, end = 0, len(text)
    while pos < end:
        if text[pos] == "\n":
            lines.append([])
            pos += 1
            continue
        fast = _FAST.match(text, pos)
        if fast is not None and (fast[1] is None or fast[1].lower() not in _ASSIMILATIONS):
            if fast[1] is not None:
                lines[-1].append(fast[1])
            pos = fast.end()
            continue
        best_len, best = 0, None
        for rx, action in _RULES:
            m = rx.match(text, pos)
            if m is not None and m.end() - pos > best_len:
                best_len, best = m.end() - pos, (m.group("t"), action)
        if best is None:  # CoreNLP's default "untokenizable" policy: drop the character
            pos += 1
            continue
        tokens, consumed = best[1](best[0])
        lines[-1].extend(t for t in tokens if t)  # a lone soft hyphen yields no token
        pos += consumed
    return lines


def ptb_tokenize(captions: Sequence[str]) -> list[str]:
    """Tokenise captions exactly like pycocoevalcap's ``PTBTokenizer`` does.

    The captions must be given in the order pycocoevalcap would write them to its temporary
    file (one call per side), because an abbreviation at the end of one caption is
    tokenised according to how the next caption starts.

    Args:
        captions: Raw captions.

    Returns:
        One space-joined, lowercased, punctuation-free string per caption.
    """
    lines = [_OTHER_NEWLINES.sub(" ", c.replace("\n", " ")) for c in captions]
    text = "\n".join(lines)
    out: list[str] = []
    cache: dict[tuple[str, str], str] = {}  # captions repeat a lot in change-captioning sets
    start = 0
    for line in lines:
        end = start + len(line)
        key = (line, _RIGHT_CONTEXT.match(text, end)[0])
        if key not in cache:
            tokens = _lex(line + key[1])[0]
            # pycocoevalcap splits each output line with ``line.rstrip().split(" ")``.
            words = " ".join(tokens).lower().rstrip().split(" ")
            cache[key] = " ".join(w for w in words if w not in PUNCTUATIONS)
        out.append(cache[key])
        start = end + 1
    return out
