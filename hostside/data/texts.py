"""What the voices say: the wake phrase in its spellings and phrasings, hard negatives built from it (its
words alone, cut short, rhymes, other greetings), everyday words, and random sentences for long negative
streams. All of it derives from the phrase, so another wake word gets its own hard negatives."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ToolchainMissing

COMMON_WORDS = ("hello", "yes", "no", "stop", "go", "kitchen", "happy", "seven", "music", "weather", "timer",
                "lights on", "good morning", "thank you", "what time is it", "play some music", "turn it off",
                "ok google", "alexa", "hey siri", "good night", "okay", "see you later", "how are you", "maybe",
                "excuse me", "right now", "come here", "tomorrow", "open the door")
ONSETS = ("b", "d", "g", "j", "l", "m", "n", "p", "r", "s", "t", "w", "sk", "sh", "ch", "tr")
GREETINGS = ("hi", "okay", "oh", "say", "pay", "hey there", "ahoy")
# a small grammar for random sentences (negative streams)
_SUBJ = ("the weather", "my brother", "our neighbour", "the old man", "a small dog", "the train", "everyone",
         "the meeting", "my phone", "the children", "this recipe", "the new kitchen", "her cousin", "the radio",
         "nobody", "the office", "a friend of mine", "the garden", "the football team", "the teacher")
_VERB = ("is going to", "said we should", "will probably", "wanted to", "might", "can never", "forgot to",
         "decided to", "tried to", "used to", "is about to", "refused to", "promised to", "would rather")
_ACT = ("call back later", "open the window", "make some coffee", "take the bus", "read the letter",
        "paint the fence", "walk to the station", "buy fresh bread", "fix the heater", "watch the game",
        "clean the car", "visit the museum", "cook dinner", "turn the music down", "water the plants",
        "book a table", "finish the report", "feed the cat", "answer the door", "plan the holiday",
        "change the battery", "check the mail", "count the money", "sing a song", "wait outside")
_TAIL = ("tomorrow", "on monday", "after lunch", "before it rains", "this evening", "next week", "right away",
         "in the morning", "again", "as soon as possible", "by the river", "with his sister", "at the weekend",
         "for a while", "if there is time", "", "", "")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def positive_texts(phrase: str, spellings=()) -> tuple[str, ...]:
    """The phrase as people write it: its spellings, with a comma, a question mark, an exclamation."""
    out: list[str] = []
    for s in (phrase, *spellings):
        w = words(s)
        out += [" ".join(w), f"{w[0]}, {' '.join(w[1:])}?" if len(w) > 1 else f"{w[0]}?", f"{' '.join(w)}!"]
    return tuple(dict.fromkeys(out))


def _onset_split(word: str) -> tuple[str, str]:
    m = re.match(r"^([^aeiouy]*)(.*)$", word)
    return m.group(1), m.group(2)


def rhyme_of(phrase: str, onset: str) -> str:
    """The phrase with its last word's onset replaced: rhyme_of("hey kimi", "t") == "hey timi"."""
    w = words(phrase)
    return " ".join(w[:-1] + [onset + _onset_split(w[-1])[1]])


def hard_negatives(phrase: str, spellings=()) -> tuple[str, ...]:
    """Phrases that overlap or rhyme with the wake phrase but are not it."""
    w = words(phrase)
    keep = {" ".join(words(p)) for p in (phrase, *spellings)}
    out = list(w)                                                # each word alone
    last = w[-1]
    onset, rest = _onset_split(last)
    if len(last) > 3:
        out.append(" ".join(w[:-1] + [last[: max(2, len(last) - 2)]]))      # cut short
    for o in ONSETS:                                              # rhymes: another onset on the last word
        if o != onset and rest:
            out.append(rhyme_of(phrase, o))
    if len(w) > 1:
        for g in GREETINGS:                                       # another greeting before the name
            out.append(" ".join([g] + w[1:]))
        out.append(" ".join(w[1:] + w[:1]))                       # reversed
        out.append(f"{' '.join(w[:-1])} there {w[-1]}")
    return tuple(t for t in dict.fromkeys(out) if t not in keep)


def spelling_rhymes(phrase: str, spellings=()) -> dict[str, tuple[str, ...]]:
    """{onset: the rhymes of each other spelling of the phrase with that onset}: for "hey kimi" spelt "hey kimmy"
    and "hey keemee", onset "t" gives ("hey timmy", "hey teemee"). hard_negatives() rhymes the phrase as written
    only ("hey timi"), which a TTS engine may say with another vowel than the spellings' own. Keyed by onset so
    that a caller can keep each onset in the split of the phrase's own rhyme."""
    w = words(phrase)
    keep = {" ".join(words(p)) for p in (phrase, *spellings)}
    own = _onset_split(w[-1])[1]
    out: dict[str, list[str]] = {}
    for sp in spellings:
        onset, rest = _onset_split(words(sp)[-1])
        if not rest or rest == own:
            continue
        for o in ONSETS:
            t = rhyme_of(sp, o)
            if o != onset and t not in keep:
                out.setdefault(o, [])
                if t not in out[o]:
                    out[o].append(t)
    return {o: tuple(v) for o, v in out.items()}


def random_sentences(n: int, seed: int, avoid: str = "") -> list[str]:
    """n sentences from a small grammar; none contains the phrase `avoid`."""
    rng = np.random.default_rng(seed)
    avoid = " ".join(words(avoid))
    out: list[str] = []
    while len(out) < n:
        s = " ".join(p for p in (_SUBJ[rng.integers(len(_SUBJ))], _VERB[rng.integers(len(_VERB))],
                                 _ACT[rng.integers(len(_ACT))], _TAIL[rng.integers(len(_TAIL))]) if p)
        if not avoid or avoid not in " ".join(words(s)):
            out.append(s)
    return out


# Word lists Debian installs, by espeak-ng language: speech in other languages, each word read in its own language,
# for the phoneme head (SynthConfig.native_negatives). Paths are under /usr/share: a plain list (dict/, the w* packages)
# or a Hunspell dictionary (hunspell/*.dic, the hunspell-* packages: one word a line with its affix flags after "/",
# its count on the first line, its encoding named by the .aff beside it) where Debian packages no plain list.
# Neither the conversation's languages (Czech, English) nor validation's (Dutch) is among them, nor a near twin of one
# (Slovak, Afrikaans, Galician are left out); German, Spanish, French and Italian are among the languages the test's
# real speech (telephone prompts) and its people reading letters speak — other recordings, by people — which
# NATIVE_HELD_OUT, NATIVE_MANY and NATIVE_WIDE leave out too (Arabic, which people read letters in, is not
# listed at all).
NATIVE_WORDLISTS = {"bg": ("dict/bulgarian", "wbulgarian"), "ca": ("dict/catalan", "wcatalan"),
                    "da": ("dict/danish", "wdanish"), "de": ("dict/ngerman", "wngerman"),
                    "el": ("hunspell/el_GR.dic", "hunspell-el"), "es": ("dict/spanish", "wspanish"),
                    "eu": ("hunspell/eu.dic", "hunspell-eu"), "fr": ("dict/french", "wfrench"),
                    "hr": ("hunspell/hr_HR.dic", "hunspell-hr"), "hu": ("hunspell/hu_HU.dic", "hunspell-hu"),
                    "is": ("hunspell/is_IS.dic", "hunspell-is"), "it": ("dict/italian", "witalian"),
                    "lt": ("hunspell/lt_LT.dic", "hunspell-lt"), "lv": ("hunspell/lv_LV.dic", "hunspell-lv"),
                    "nb": ("dict/bokmaal", "wnorwegian"), "pl": ("dict/polish", "wpolish"),
                    "pt": ("dict/portuguese", "wportuguese"), "ro": ("hunspell/ro_RO.dic", "hunspell-ro"),
                    "sl": ("hunspell/sl_SI.dic", "hunspell-sl"), "sv": ("dict/swedish", "wswedish"),
                    "tr": ("hunspell/tr_TR.dic", "hunspell-tr"), "eo": ("hunspell/eo.dic", "myspell-eo"),
                    "et": ("hunspell/et_EE.dic", "myspell-et"), "ga": ("hunspell/ga_IE.dic", "myspell-ga"),
                    "gd": ("hunspell/gd_GB.dic", "myspell-gd"), "he": ("hunspell/he_IL.dic", "hunspell-he"),
                    "hy": ("hunspell/hy_AM.dic", "myspell-hy"), "id": ("hunspell/id_ID.dic", "hunspell-id"),
                    "kk": ("hunspell/kk_KZ.dic", "hunspell-kk"), "ko": ("hunspell/ko.dic", "hunspell-ko"),
                    "ku": ("hunspell/kmr_Latn.dic", "hunspell-kmr"), "sq": ("hunspell/sq_AL.dic", "myspell-sq"),
                    "sw": ("hunspell/sw_TZ.dic", "hunspell-sw"), "uz": ("hunspell/uz_UZ.dic", "hunspell-uz")}
NATIVE_LANGUAGES = ("da", "de", "es", "fr", "it", "pt", "sv")        # native_languages' default (make deps installs them)
NATIVE_HELD_OUT = ("bg", "ca", "da", "nb", "pl", "pt", "sv")         # none that any test or validation set speaks
NATIVE_MANY = ("bg", "ca", "da", "el", "eu", "hr", "hu", "is", "lt", "lv", "nb", "pl", "pt", "ro", "sl", "sv", "tr")
NATIVE_WIDE = NATIVE_MANY + ("eo", "et", "ga", "gd", "he", "hy", "id", "kk", "ko", "ku", "sq", "sw", "uz")
                                         # 30: NATIVE_MANY and 13 more in other families and scripts (attempts.md §43)
NATIVE_SETS = {"many": NATIVE_MANY, "wide": NATIVE_WIDE, "held-out": NATIVE_HELD_OUT}   # `--native-languages NAME`
WORDLIST_ROOT = Path("/usr/share")


def _hunspell_lines(path: Path) -> list[str]:
    """A Hunspell .dic's entries cut at their affix flags ("/") or morphological fields (tab or space), decoded in
    the encoding its .aff names (ISO8859-1 when none). Its count line and comments are not words: native_words'
    letters-only filter drops them."""
    enc = "ISO8859-1"
    aff = path.with_suffix(".aff")
    if aff.is_file():
        for line in aff.read_bytes().splitlines():
            field = line.removeprefix(b"\xef\xbb\xbf").split()          # a byte-order mark before it; a tab after SET
            if len(field) > 1 and field[0] == b"SET":
                enc = field[1].decode("ascii", "replace")
                break
    return [line.split()[0].split("/")[0] for line in path.read_bytes().decode(enc, errors="replace").splitlines()
            if line.strip()]


ENGLISH_WORDLIST = ("dict/american-english", "wamerican")   # SynthConfig.english_words: Debian's American English


@lru_cache(maxsize=None)
def english_words(min_letters: int = 2, max_letters: int = 9, root: Path = WORDLIST_ROOT) -> tuple[str, ...]:
    """The words of Debian's American English word list (ENGLISH_WORDLIST, under `root`) of min..max letters,
    lowercase letters only: no names (capitalised), possessives or abbreviations, in the list's order."""
    name, pkg = ENGLISH_WORDLIST
    path = Path(root) / name
    if not path.is_file():
        raise ToolchainMissing(f"{path} is missing (Debian package {pkg}): `sudo apt-get install {pkg}` (or `make deps`)")
    out = tuple(w for w in (line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
                if min_letters <= len(w) <= max_letters and w.isascii() and w.isalpha() and w.islower())
    if not out:
        raise ToolchainMissing(f"{path} holds no word of {min_letters}-{max_letters} letters: reinstall {pkg}")
    return out


@lru_cache(maxsize=None)
def native_words(lang: str, min_letters: int = 2, max_letters: int = 9, root: Path = WORDLIST_ROOT) -> tuple[str, ...]:
    """The words of `lang`'s Debian word list (NATIVE_WORDLISTS, under `root`) of min..max letters and letters only
    (no apostrophes, hyphens, digits; no abbreviations written in capitals), in the list's order."""
    if lang not in NATIVE_WORDLISTS:
        raise ValueError(f"no word list for language {lang!r}; known: {', '.join(NATIVE_WORDLISTS)}")
    name, pkg = NATIVE_WORDLISTS[lang]
    path = Path(root) / name
    if not path.is_file():
        raise ToolchainMissing(f"{path} is missing (Debian package {pkg}): `sudo apt-get install {pkg}` (or `make deps`)")
    lines = (_hunspell_lines(path) if path.suffix == ".dic"
             else path.read_text(encoding="utf-8", errors="replace").splitlines())
    out = []
    for line in lines:
        w = line.strip()
        if min_letters <= len(w) <= max_letters and w.isalpha() and not (len(w) > 1 and w.isupper()):
            out.append(w)
    if not out:
        raise ToolchainMissing(f"{path} holds no word of {min_letters}-{max_letters} letters: reinstall {pkg}")
    return tuple(out)
