"""English text respelt in another language's spelling, so that a voice of that language says it.

Festival's Czech, Finnish, Italian, Catalan, Russian, Hindi, Marathi and Telugu voices (Debian festvox packages)
are natural-sounding diphone, unit-selection and HTS voices, female and male, that English-speaking engines
installed offline do not have. Given English text
they would read it by their own spelling rules; given the text *respelt* they say something close to the
English pronunciation, as a speaker of that language would ("hey kimi" → Czech "hej kimi", Italian "ei chimi").

How: espeak-ng's English (en-us) phonemes for the text (`espeak-ng -q --ipa`), then each phoneme written the
way the target language writes the nearest sound, with the few context rules its spelling needs (Italian and
Catalan c/ch/qu before front vowels, Russian's iotated vowel letters, and for the Indian scripts, which are
abugidas, a vowel sign after a consonant, an independent vowel letter elsewhere and a virama between consonants). Works for any phrase, so the wake phrase, its hard negatives and the
negative sentences all go through the same path. Punctuation is kept (it shapes the voice's intonation).
"""
from __future__ import annotations

import re
import subprocess
import unicodedata
from functools import lru_cache

from ..errors import PqlrError, ToolchainMissing

_LATIN = ("cs", "fi", "it", "ca")
LANGUAGES = _LATIN + ("ru", "hi", "mr", "te")
# the byte encoding each language's festival front end reads (the Latin ones spell UTF-8 input out byte by byte;
# festival's Russian, Hindi, Marathi and Telugu front ends read UTF-8)
ENCODING = {"cs": "iso-8859-2", "fi": "iso-8859-1", "it": "iso-8859-1", "ca": "iso-8859-1",
            "ru": "utf-8", "hi": "utf-8", "mr": "utf-8", "te": "utf-8"}

# espeak-ng's English phonemes, longest first when tokenising
_VOWELS = {
    #        cs     fi     it     ca
    "aɪɚ": ("ajer", "aier", "aier", "aier"), "aɪə": ("ajer", "aier", "aier", "aier"),
    "eɪ": ("ej", "ei", "ei", "ei"), "aɪ": ("aj", "ai", "ai", "ai"), "ɔɪ": ("oj", "oi", "oi", "oi"),
    "aʊ": ("au", "au", "au", "au"), "oʊ": ("ou", "ou", "ou", "ou"), "əʊ": ("ou", "ou", "ou", "ou"),
    "iə": ("ije", "ie", "ie", "ie"), "eə": ("é", "ee", "e", "e"), "ʊə": ("ua", "ua", "ua", "ua"),
    "ɑːɹ": ("ár", "aar", "ar", "ar"), "ɔːɹ": ("ór", "oor", "or", "or"), "ɛɹ": ("er", "er", "er", "er"),
    "ɪɹ": ("ír", "iir", "ir", "ir"), "ʊɹ": ("ur", "ur", "ur", "ur"),
    "iː": ("í", "ii", "i", "i"), "uː": ("ú", "uu", "u", "u"), "ɑː": ("á", "aa", "a", "a"),
    "ɔː": ("ó", "oo", "o", "o"), "ɜː": ("ér", "öör", "er", "er"), "ɝ": ("ér", "öör", "er", "er"),
    "ɚ": ("er", "er", "er", "er"), "i": ("i", "i", "i", "i"), "ɪ": ("i", "i", "i", "i"), "ᵻ": ("i", "i", "i", "i"),
    "ɛ": ("e", "e", "e", "e"), "e": ("e", "e", "e", "e"), "æ": ("e", "ä", "e", "e"), "a": ("a", "a", "a", "a"),
    "ɑ": ("a", "a", "a", "a"), "ɒ": ("o", "o", "o", "o"), "ɔ": ("o", "o", "o", "o"), "o": ("o", "o", "o", "o"),
    "ʊ": ("u", "u", "u", "u"), "u": ("u", "u", "u", "u"), "ʌ": ("a", "a", "a", "a"), "ə": ("e", "e", "e", "a"),
    "ɐ": ("a", "a", "a", "a"),
}
_CONSONANTS = {
    "tʃ": ("č", "ts", None, "tx"), "dʒ": ("dž", "ts", None, "tj"),
    "p": ("p",) * 4, "b": ("b",) * 4, "t": ("t",) * 4, "d": ("d",) * 4, "k": ("k", "k", None, None),
    "ɡ": ("g", "g", None, None), "g": ("g", "g", None, None), "f": ("f",) * 4, "v": ("v",) * 4,
    "θ": ("t", "t", "t", "t"), "ð": ("d", "d", "d", "d"), "s": ("s",) * 4, "z": ("z", "s", "s", "s"),
    "ʃ": ("š", "s", None, "x"), "ʒ": ("ž", "s", "g", "j"), "h": ("h", "h", "", ""), "m": ("m",) * 4,
    "n": ("n",) * 4, "ŋ": ("ng",) * 4, "l": ("l",) * 4, "ɹ": ("r",) * 4, "r": ("r",) * 4, "ɾ": ("d",) * 4,
    "j": ("j", "j", "i", "i"), "w": ("v", "v", "u", "u"), "x": ("ch", "h", "c", "c"), "ʔ": ("",) * 4,
}
_FRONT = ("i", "e", "í", "é")

# Russian: one Cyrillic spelling per phoneme; й before a vowel letter becomes the iotated letter (йа → я)
_RU = {
    "aɪɚ": "айэр", "aɪə": "айэр", "eɪ": "эй", "aɪ": "ай", "ɔɪ": "ой", "aʊ": "ау", "oʊ": "оу", "əʊ": "оу",
    "iə": "иэ", "eə": "э", "ʊə": "уа", "ɑːɹ": "ар", "ɔːɹ": "ор", "ɛɹ": "эр", "ɪɹ": "ир", "ʊɹ": "ур",
    "iː": "и", "uː": "у", "ɑː": "а", "ɔː": "о", "ɜː": "эр", "ɝ": "эр", "ɚ": "эр", "i": "и", "ɪ": "и", "ᵻ": "и",
    "ɛ": "э", "e": "э", "æ": "э", "a": "а", "ɑ": "а", "ɒ": "о", "ɔ": "о", "o": "о", "ʊ": "у", "u": "у", "ʌ": "а",
    "ə": "а", "ɐ": "а",
    "tʃ": "ч", "dʒ": "дж", "p": "п", "b": "б", "t": "т", "d": "д", "k": "к", "ɡ": "г", "g": "г", "f": "ф",
    "v": "в", "θ": "т", "ð": "д", "s": "с", "z": "з", "ʃ": "ш", "ʒ": "ж", "h": "х", "m": "м", "n": "н", "ŋ": "нг",
    "l": "л", "ɹ": "р", "r": "р", "ɾ": "д", "j": "й", "w": "у", "x": "х", "ʔ": "",
}
_RU_IOTATED = {"йа": "я", "йу": "ю", "йэ": "е", "йо": "ё"}

# The Indian scripts are abugidas: English phonemes → units of one shared inventory, then each script's letters.
# English /t d/ are alveolar, heard as retroflex by Hindi and Telugu speakers (T, D); /æ/ as a long open e (ae).
_UNITS = {
    "aɪɚ": ("aa", "i", "a", "r"), "aɪə": ("aa", "i", "a", "r"), "eɪ": ("e",), "aɪ": ("aa", "i"), "ɔɪ": ("o", "i"),
    "aʊ": ("aa", "u"), "oʊ": ("o",), "əʊ": ("o",), "iə": ("i", "a"), "eə": ("e", "a"), "ʊə": ("u", "a"),
    "ɑːɹ": ("aa", "r"), "ɔːɹ": ("o", "r"), "ɛɹ": ("e", "r"), "ɪɹ": ("i", "r"), "ʊɹ": ("u", "r"),
    "iː": ("ii",), "uː": ("uu",), "ɑː": ("aa",), "ɔː": ("o",), "ɜː": ("a", "r"), "ɝ": ("a", "r"), "ɚ": ("a", "r"),
    "i": ("i",), "ɪ": ("i",), "ᵻ": ("i",), "ɛ": ("e",), "e": ("e",), "æ": ("ae",), "a": ("aa",), "ɑ": ("aa",),
    "ɒ": ("o",), "ɔ": ("o",), "o": ("o",), "ʊ": ("u",), "u": ("u",), "ʌ": ("a",), "ə": ("a",), "ɐ": ("a",),
    "tʃ": ("c",), "dʒ": ("j",), "p": ("p",), "b": ("b",), "t": ("T",), "d": ("D",), "k": ("k",), "ɡ": ("g",),
    "g": ("g",), "f": ("f",), "v": ("v",), "θ": ("th",), "ð": ("dh",), "s": ("s",), "z": ("z",), "ʃ": ("sh",),
    "ʒ": ("z",), "h": ("h",), "m": ("m",), "n": ("n",), "ŋ": ("n", "g"), "l": ("l",), "ɹ": ("r",), "r": ("r",),
    "ɾ": ("D",), "j": ("y",), "w": ("v",), "x": ("kh",), "ʔ": (),
}
_CONSONANT_UNITS = ("k", "kh", "g", "c", "j", "T", "D", "th", "dh", "n", "p", "f", "b", "m", "y", "r", "l", "v", "sh",
                    "s", "z", "h")
_VOWEL_UNITS = ("a", "aa", "i", "ii", "u", "uu", "e", "ae", "o")


def _script(consonants: str, independent: str, signs: str, virama: str) -> dict:
    """A script's letters for the units, in _CONSONANT_UNITS / _VOWEL_UNITS order (space-separated; the inherent
    vowel's sign is empty, written "-")."""
    return dict(consonants=dict(zip(_CONSONANT_UNITS, consonants.split(), strict=True)),
                vowels={u: (i, "" if m == "-" else m)
                        for u, i, m in zip(_VOWEL_UNITS, independent.split(), signs.split(), strict=True)},
                virama=virama)


_DEVANAGARI = _script("क ख ग च ज ट ड थ द न प फ ब म य र ल व श स ज ह", "अ आ इ ई उ ऊ ए ऐ ओ", "- ा ि ी ु ू े ै ो", "्")
_TELUGU = _script("క ఖ గ చ జ ట డ థ ద న ప ఫ బ మ య ర ల వ శ స జ హ", "అ ఆ ఇ ఈ ఉ ఊ ఏ ఏ ఓ", "- ా ి ీ ు ూ ే ే ో", "్")
_SCRIPT = {"hi": _DEVANAGARI, "mr": _DEVANAGARI, "te": _TELUGU}


def _abugida(tokens: list[str], script: dict) -> str:
    """A vowel sign after a consonant, an independent letter elsewhere, a virama on a consonant no vowel follows."""
    units = [u for t in tokens for u in _UNITS[t]]
    cons, vowels, out = script["consonants"], script["vowels"], []
    for i, u in enumerate(units):
        if u in cons:
            out.append(cons[u])
            if i + 1 == len(units) or units[i + 1] not in vowels:
                out.append(script["virama"])
        else:
            out.append(vowels[u][1] if i and units[i - 1] in cons else vowels[u][0])
    return "".join(out)
_TOKENS = sorted({**_VOWELS, **_CONSONANTS}, key=len, reverse=True)


def _context(ph: str, nxt: str, lang: str) -> str:
    """Italian and Catalan spell /k/, /g/, /tʃ/, /dʒ/, /ʃ/ by the vowel that follows (nxt: its spelling)."""
    front = nxt.startswith(_FRONT)
    if lang == "it":
        return {"k": "ch" if front else "c", "ɡ": "gh" if front else "g", "g": "gh" if front else "g",
                "tʃ": "c" if front else "ci", "dʒ": "g" if front else "gi", "ʃ": "sc" if front else "sci"}[ph]
    return {"k": "qu" if front else "c", "ɡ": "gu" if front else "g", "g": "gu" if front else "g"}[ph]   # ca


def phonemes(ipa: str) -> list[str]:
    """espeak-ng IPA for one word → phoneme tokens (stress and syllabic marks dropped; unknown symbols skipped)."""
    s = "".join(ch for ch in unicodedata.normalize("NFD", ipa) if not unicodedata.combining(ch))
    s = s.replace("ˈ", "").replace("ˌ", "").replace("‿", "")
    out, i = [], 0
    while i < len(s):
        for t in _TOKENS:
            if s.startswith(t, i):
                out.append(t)
                i += len(t)
                break
        else:
            i += 1
    return out


def spell(tokens: list[str], lang: str) -> str:
    """Phoneme tokens → the target language's spelling."""
    if lang == "ru":
        return re.sub("|".join(_RU_IOTATED), lambda m: _RU_IOTATED[m.group()], "".join(_RU[t] for t in tokens))
    if lang in _SCRIPT:
        return _abugida(tokens, _SCRIPT[lang])
    if lang not in _LATIN:
        raise PqlrError(f"no respelling for language {lang!r}; known: {', '.join(LANGUAGES)}")
    k = _LATIN.index(lang)
    plain = [(_VOWELS.get(t) or _CONSONANTS[t])[k] for t in tokens]
    out = []
    for i, (t, p) in enumerate(zip(tokens, plain)):
        if p is None:
            nxt = next((q for q in plain[i + 1:] if q), "")
            p = _context(t, nxt or "", lang)
        out.append(p)
    return "".join(out)


@lru_cache(maxsize=4096)
def english_ipa(text: str) -> tuple[str, ...]:
    """espeak-ng's en-us IPA for text, one entry per word (punctuation dropped)."""
    try:
        p = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", "en-us", text], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise ToolchainMissing("espeak-ng is not installed: `sudo apt-get install espeak-ng` (or `make deps`)") from None
    if p.returncode != 0:
        raise PqlrError(f"espeak-ng could not phonemise {text!r}: {p.stderr.strip()}")
    return tuple(p.stdout.split())


def respell(text: str, lang: str) -> str:
    """English text as a speaker of `lang` (one of LANGUAGES) would write it; punctuation kept."""
    if lang not in LANGUAGES:
        raise PqlrError(f"no respelling for language {lang!r}; known: {', '.join(LANGUAGES)}")
    parts = re.findall(r"[A-Za-z0-9']+(?:[\s-]+[A-Za-z0-9']+)*|[^\w\s]", text)
    out = []
    for part in parts:
        if re.match(r"[A-Za-z0-9']", part):
            out.append(" ".join(w for w in (spell(phonemes(ipa), lang) for ipa in english_ipa(part)) if w))
        elif out:
            out[-1] += part
    return " ".join(out)
