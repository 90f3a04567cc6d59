"""Tell Indonesian from English, cheaply.

Kabar only needs to know which of its two languages a question or article is in, to ask
the model to answer in that language and to report results by language. A count of very
common function words does that reliably for sentences of a few words; anything with no
Indonesian signal is treated as English. Other languages are not detected.
"""

from __future__ import annotations

import re

_ID = frozenset(
    "yang dan di ke dari ini itu dengan untuk pada adalah dalam tidak akan oleh juga atau karena "
    "sebagai bahwa telah sudah belum siapa apa apakah berapa kapan mengapa kenapa bagaimana dimana "
    "mana saja para tersebut kami kita mereka ia dia nya pun lebih sangat bisa dapat harus serta "
    "namun tetapi hingga sejak setelah sebelum antara menjadi memimpin tahun bulan hari orang "
    "perusahaan pemerintah menurut kata ada masih baru sedang nama jumlah saat sekarang terjadi terhadap "
    "warga negara kota merupakan yaitu seperti bagi agar jika kalau tentang sekitar secara lalu ketika "
    "siapakah apakah berapakah kapankah dimanakah bagaimanakah mengapakah manakah".split()
)
_EN = frozenset(
    "the and of to in is are was were for on with that this by from at as who what which when "
    "where why how does did do has have had will would can could its it be been an a or not "
    "company said after before about".split()
)
_ID_PREFIXES = ("meng", "meny", "memb", "memp", "menj", "mend", "peng", "peny", "memper", "diper")
_WORD = re.compile(r"[a-zA-Z]+")


def detect_lang(text: str) -> str:
    """``"id"`` for Indonesian, else ``"en"``."""
    words = [w.lower() for w in _WORD.findall(text[:4000])]
    id_score = (sum(w in _ID for w in words)
                + sum(w.endswith(("nya", "kah")) and len(w) > 4 for w in words)
                + 0.5 * sum(w.startswith(_ID_PREFIXES) and len(w) > 6 for w in words))
    en_score = sum(w in _EN for w in words)
    return "id" if id_score > en_score else "en"
