"""llama2.c's byte-fallback BPE tokenizer: file formats, encode, decode, a small trainer.

Encoding follows llama2.c's `encode()` exactly so prompts give the same ids as
`run.c` would: a dummy leading space, one token per UTF-8 code point (or its
bytes as `<0xXX>` tokens), then repeated merging of the best-scoring pair.
"""

from __future__ import annotations

import itertools
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from profiler.errors import ConfigError, ModelError

UNK, BOS, EOS = 0, 1, 2
BYTE_OFFSET = 3  # id of <0x00>; byte b is token b + 3
_SPECIALS = (b"<unk>", b"<s>", b"</s>")
_BYTE_PIECE = re.compile(rb"<0x([0-9A-Fa-f]{2})>")
# Training chunks: a word with its leading space, or a lone whitespace character,
# so no merged token ever spans two words (as with sentencepiece vocabularies).
_CHUNK = re.compile(r" ?[^\s]+|\s")


@dataclass(frozen=True, eq=False)
class Tokenizer:
    """A vocabulary of byte strings with merge scores, as in llama2.c's `tokenizer.bin`."""

    vocab: tuple[bytes, ...]
    scores: tuple[float, ...]  # float32 values
    max_token_length: int
    _ids: dict[bytes, int] = field(init=False, repr=False, compare=False)
    _chunk_ids: dict[str, list[int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.vocab) != len(self.scores):
            raise ValueError(f"{len(self.vocab)} tokens but {len(self.scores)} scores")
        ids: dict[bytes, int] = {}
        for i, piece in enumerate(self.vocab):
            ids.setdefault(piece, i)  # the lowest id wins for a duplicated piece
        object.__setattr__(self, "_ids", ids)
        object.__setattr__(self, "_chunk_ids", {})  # chunk -> ids; "" -> [splits_at_words]

    def __repr__(self) -> str:
        return f"Tokenizer({self.vocab_size} tokens, max_token_length={self.max_token_length})"

    @property
    def vocab_size(self) -> int:
        """Number of tokens."""
        return len(self.vocab)

    # ---- llama2.c tokenizer.bin ---------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, vocab_size: int | None = None) -> Tokenizer:
        """Read llama2.c's `tokenizer.bin`; without `vocab_size`, read to the end of file."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read tokenizer {path}: {exc.strerror}; check the "
                             "path") from exc
        try:
            if len(data) < 4:
                raise ValueError("shorter than its 4-byte header")
            (max_len,) = struct.unpack_from("<i", data)
            vocab, scores, end = _read_entries(data, 4, vocab_size)
        except ValueError as exc:
            raise ModelError(f"{path} is not a llama2.c tokenizer.bin ({exc}); export it "
                             "with llama2.c's tokenizer.py") from exc
        if vocab_size is not None and end != len(data):
            raise ModelError(f"{path} holds more than the {vocab_size} tokens the model "
                             "uses; pass the tokenizer that belongs to this checkpoint")
        return cls(tuple(vocab), tuple(scores), max_len)

    def save(self, path: str | Path) -> None:
        """Write llama2.c's `tokenizer.bin` format."""
        Path(path).write_bytes(struct.pack("<i", self.max_token_length) + self._entries())

    # ---- TPMD tokenizer block -----------------------------------------------------------

    def to_block(self) -> bytes:
        """The TPMD tokenizer block: u32 n_tokens, u32 max_token_length, entries."""
        return struct.pack("<II", self.vocab_size, self.max_token_length) + self._entries()

    @classmethod
    def from_block(cls, data: bytes) -> Tokenizer:
        """Parse a TPMD tokenizer block that runs to the end of `data` (ValueError if not)."""
        if len(data) < 8:
            raise ValueError("shorter than its 8-byte header")
        n_tokens, max_len = struct.unpack_from("<II", data)
        vocab, scores, end = _read_entries(data, 8, n_tokens)
        if end != len(data):
            raise ValueError(f"{len(data) - end} stray bytes after the last token")
        return cls(tuple(vocab), tuple(scores), max_len)

    def _entries(self) -> bytes:
        out = bytearray()
        for piece, score in zip(self.vocab, self.scores, strict=True):
            out += struct.pack("<fI", score, len(piece)) + piece
        return bytes(out)

    # ---- encode / decode ----------------------------------------------------------------

    def encode(self, text: str, bos: bool = True, eos: bool = False) -> list[int]:
        """Token ids of `text`, exactly as llama2.c's `encode()` produces them.

        When no merge can span two words (`splits_at_words`, true of every vocabulary
        `train_bpe` makes) each word is merged on its own and remembered: the same ids,
        hundreds of times faster on long texts.
        """
        if not text or not self.splits_at_words:
            return self._encode_whole(text, bos, eos)
        tokens: list[int] = [BOS] if bos else []
        for chunk in _CHUNK.findall(" " + text):
            ids = self._chunk_ids.get(chunk)
            if ids is None:
                ids = self._chunk_ids[chunk] = self._merge(
                    [t for char in chunk for t in self._lookup_or_bytes(char.encode("utf-8"))])
            tokens.extend(ids)
        if eos:
            tokens.append(EOS)
        return tokens

    @property
    def splits_at_words(self) -> bool:
        """True when no vocabulary piece can join across the boundary of two `_CHUNK`s: no
        piece has whitespace after its first character, only a space may lead, and no piece
        extends a byte token such as `<0x0A>`."""
        cached = self._chunk_ids.get("")
        if cached is None:
            ok = True
            for piece in self.vocab[len(_SPECIALS):]:
                text = piece.decode("utf-8", errors="replace")
                bad_space = any(ch.isspace() for ch in text[1:]) or (text[:1].isspace() and text[:1] != " ")
                if bad_space or (piece.startswith(b"<0x") and not _BYTE_PIECE.fullmatch(piece)):
                    ok = False
                    break
            cached = self._chunk_ids[""] = [int(ok)]
        return bool(cached[0])

    def _encode_whole(self, text: str, bos: bool, eos: bool) -> list[int]:
        tokens: list[int] = [BOS] if bos else []
        body: list[int] = []
        if text:
            body.extend(self._lookup_or_bytes(b" "))
        for char in text:
            body.extend(self._lookup_or_bytes(char.encode("utf-8")))
        tokens.extend(self._merge(body))
        if eos:
            tokens.append(EOS)
        return tokens

    def _merge(self, tokens: list[int]) -> list[int]:
        """llama2.c's merge loop: join the best-scoring adjacent pair until none is left."""
        while True:
            best_score, best_id, best_idx = -1e10, -1, -1
            for i in range(len(tokens) - 1):
                merged = self._ids.get(self.vocab[tokens[i]] + self.vocab[tokens[i + 1]], -1)
                if merged != -1 and self.scores[merged] > best_score:
                    best_score, best_id, best_idx = self.scores[merged], merged, i
            if best_idx == -1:
                break
            tokens[best_idx:best_idx + 2] = [best_id]
        return tokens

    def _lookup_or_bytes(self, piece: bytes) -> list[int]:
        token = self._ids.get(piece)
        return [token] if token is not None else [b + BYTE_OFFSET for b in piece]

    def decode_piece(self, prev_token: int, token: int) -> bytes:
        """Bytes token `token` stands for after `prev_token` (llama2.c's `decode()`)."""
        piece = self.vocab[token]
        if prev_token == BOS and piece.startswith(b" "):
            piece = piece[1:]
        match = _BYTE_PIECE.fullmatch(piece)
        return bytes([int(match.group(1), 16)]) if match else piece

    def decode(self, tokens: list[int], prev_token: int = BOS) -> str:
        """Text of a token sequence; bytes that are not valid UTF-8 become U+FFFD."""
        out = bytearray()
        for token in tokens:
            out += self.decode_piece(prev_token, token)
            prev_token = token
        return out.decode("utf-8", errors="replace")


def _read_entries(data: bytes, offset: int, count: int | None) -> tuple[
        list[bytes], list[float], int]:
    vocab: list[bytes] = []
    scores: list[float] = []
    while (count is None and offset < len(data)) or (count is not None and len(vocab) < count):
        if offset + 8 > len(data):
            raise ValueError(f"ends inside token {len(vocab)}")
        score, length = struct.unpack_from("<fi", data, offset)
        offset += 8
        if length < 0 or offset + length > len(data):
            raise ValueError(f"token {len(vocab)} has a bad length {length}")
        vocab.append(bytes(data[offset:offset + length]))
        scores.append(score)
        offset += length
    return vocab, scores, offset


def train_bpe(text: str, vocab_size: int) -> Tokenizer:
    """Train a llama2.c-style vocabulary on `text`, deterministically.

    Ids 0..2 are `<unk>`, `<s>`, `</s>`; 3..258 the byte tokens `<0x00>`..`<0xFF>`;
    then one token per corpus character (most frequent first, as many as fit), then
    merges. Every token after the bytes scores `-order`, so earlier merges win.
    """
    first_free = BYTE_OFFSET + 256
    if vocab_size <= first_free:
        raise ConfigError(f"vocab_size {vocab_size} leaves no room after the {first_free} "
                          "special and byte tokens; ask for more tokens")
    vocab: list[bytes] = list(_SPECIALS) + [b"<0x%02X>" % b for b in range(256)]
    scores: list[float] = [0.0] * len(vocab)
    lines = [" " + line for line in text.splitlines() if line.strip()]
    chunks = Counter(c for line in lines for c in _CHUNK.findall(line))
    char_counts = Counter(ch for chunk, n in chunks.items() for ch in chunk for _ in range(n))
    chars = sorted(char_counts, key=lambda ch: (-char_counts[ch], ch))
    chars = chars[:vocab_size - first_free]
    known = {piece: i for i, piece in enumerate(vocab)}
    unmergeable = set(vocab)  # specials and byte tokens never join a merge

    def add(piece: bytes) -> None:
        if piece not in known:
            known[piece] = len(vocab)
            scores.append(float(first_free - len(vocab)))
            vocab.append(piece)

    for ch in chars:
        add(ch.encode("utf-8"))
    # each chunk as a list of pieces; characters outside the vocabulary split into bytes
    words: dict[tuple[bytes, ...], int] = {}
    for chunk, n in chunks.items():
        pieces = tuple(p for ch in chunk for p in _char_pieces(ch, known))
        words[pieces] = words.get(pieces, 0) + n
    while len(vocab) < vocab_size:
        pairs: Counter[tuple[bytes, bytes]] = Counter()
        for pieces, n in words.items():
            for a, b in itertools.pairwise(pieces):
                if a not in unmergeable and b not in unmergeable:
                    pairs[(a, b)] += n
        if not pairs:
            raise ConfigError(f"the corpus only supports {len(vocab)} tokens, not "
                              f"{vocab_size}; give train_bpe more text or ask for fewer")
        best = min(pairs, key=lambda p: (-pairs[p], p))
        add(best[0] + best[1])
        words = _merge_words(words, best)
    max_len = max(len(piece) for piece in vocab)
    return Tokenizer(tuple(vocab), tuple(float(np.float32(s)) for s in scores), max_len)


def _char_pieces(ch: str, known: dict[bytes, int]) -> list[bytes]:
    raw = ch.encode("utf-8")
    return [raw] if raw in known else [b"<0x%02X>" % b for b in raw]


def _merge_words(words: dict[tuple[bytes, ...], int],
                 pair: tuple[bytes, bytes]) -> dict[tuple[bytes, ...], int]:
    merged: dict[tuple[bytes, ...], int] = {}
    for pieces, n in words.items():
        out: list[bytes] = []
        i = 0
        while i < len(pieces):
            if i + 1 < len(pieces) and (pieces[i], pieces[i + 1]) == pair:
                out.append(pair[0] + pair[1])
                i += 2
            else:
                out.append(pieces[i])
                i += 1
        key = tuple(out)
        merged[key] = merged.get(key, 0) + n
    return merged
