"""The TPMD model file: one image a board runs in place from flash.

The layout is specified in `docs/model-format.md`; this module writes it and
reads it back with every check a user can be told about in one line.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from profiler.errors import ModelError
from profiler.models.tokenizer import Tokenizer
from profiler.outputs import results_error

MAGIC = b"TPMD"
FORMAT_VERSION = 1
HEADER_SIZE = 64
QUANT_INT8 = 1
QUANT_INT4 = 2
QUANT_CODES = {"int8": QUANT_INT8, "int4": QUANT_INT4}
QUANT_NAMES = {code: name for name, code in QUANT_CODES.items()}
QUANT_BITS = {"int8": 8, "int4": 4}
FLAG_SHARED_CLASSIFIER = 1
MAX_VOCAB = 65535

# magic, version, header_size, quant, reserved, group_size, then 13 u32 fields
_HEADER = struct.Struct("<4sHHBBH13I")
assert _HEADER.size == HEADER_SIZE

_CONVERT_HINT = "re-create it with `tiny-profiler model convert`"


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a llama-style transformer as the board sees it."""

    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    group_size: int = 32
    shared_classifier: bool = True
    quant: str = "int8"  # "int8" or "int4": how every weight matrix is stored

    @property
    def head_size(self) -> int:
        """Length of one attention head's vector."""
        return self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        """Length of one position's key (or value) vector across all kv heads."""
        return self.dim * self.n_kv_heads // self.n_heads

    @property
    def n_params(self) -> int:
        """Number of weights, counting a shared classifier once."""
        d, h, kv = self.dim, self.hidden_dim, self.kv_dim
        per_layer = 2 * d + d * d * 2 + 2 * kv * d + 3 * h * d
        classifier = 0 if self.shared_classifier else self.vocab_size * d
        return self.vocab_size * d + self.n_layers * per_layer + d + classifier

    def problem(self) -> str | None:
        """Describe the first constraint this shape breaks, or None when it is usable."""
        for name in ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
                     "seq_len", "group_size"):
            if getattr(self, name) < 1:
                return f"{name} is {getattr(self, name)}, it must be at least 1"
        if self.dim % self.n_heads:
            return f"dim {self.dim} is not divisible by n_heads {self.n_heads}"
        if self.n_heads % self.n_kv_heads:
            return f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}"
        if self.head_size % 2:
            return f"head_size {self.head_size} is odd, RoPE needs it even"
        if self.vocab_size > MAX_VOCAB:
            return f"vocab_size {self.vocab_size} is above {MAX_VOCAB}"
        if self.group_size > 0xFFFF:
            return f"group_size {self.group_size} does not fit in 16 bits"
        if self.quant not in QUANT_CODES:
            return f"quantization {self.quant!r} is not one of {', '.join(QUANT_CODES)}"
        return None


@dataclass(frozen=True, eq=False)
class QuantTensor:
    """A rows x cols matrix of small integers with one float32 scale per row group.

    `q` always holds the values unpacked, one int8 per value; with `bits == 4` they
    lie in [-8, 7] and the file packs two per byte (`docs/model-format.md`).
    """

    q: np.ndarray  # int8 (rows, cols)
    scales: np.ndarray  # float32 (rows, groups); the last group of a row may be shorter
    group_size: int
    bits: int = 8

    @property
    def rows(self) -> int:
        """Number of rows (output features)."""
        return int(self.q.shape[0])

    @property
    def cols(self) -> int:
        """Number of columns (input features)."""
        return int(self.q.shape[1])

    def dequantize(self) -> np.ndarray:
        """Float32 values, `q * scale` of each element's group."""
        group_of_col = np.arange(self.cols) // self.group_size
        return self.q.astype(np.float32) * self.scales[:, group_of_col]


@dataclass(frozen=True, eq=False)
class LayerWeights:
    """The seven quantized matrices of one transformer block."""

    wq: QuantTensor  # (dim, dim)
    wk: QuantTensor  # (kv_dim, dim)
    wv: QuantTensor  # (kv_dim, dim)
    wo: QuantTensor  # (dim, dim)
    w1: QuantTensor  # (hidden_dim, dim)
    w2: QuantTensor  # (dim, hidden_dim)
    w3: QuantTensor  # (hidden_dim, dim)

    def tensors(self) -> tuple[QuantTensor, ...]:
        """The matrices in file order."""
        return (self.wq, self.wk, self.wv, self.wo, self.w1, self.w2, self.w3)


@dataclass(frozen=True)
class ModelHeader:
    """What the 64-byte header says, for fit checks that must not read the whole file."""

    config: ModelConfig
    quant: str
    payload_size: int
    payload_crc32: int
    tokenizer_offset: int
    header_crc32: int

    @property
    def file_bytes(self) -> int:
        """Size of the whole image: what goes to the board's model flash region."""
        return HEADER_SIZE + self.payload_size


@dataclass(frozen=True, eq=False)
class TpmModel:
    """A quantized model with its RoPE table and, optionally, its tokenizer."""

    config: ModelConfig
    rope: np.ndarray  # float32 (seq_len, head_size/2, 2): (cos, sin)
    rms_att: np.ndarray  # float32 (n_layers, dim)
    rms_ffn: np.ndarray  # float32 (n_layers, dim)
    rms_final: np.ndarray  # float32 (dim,)
    embedding: QuantTensor  # (vocab_size, dim)
    layers: tuple[LayerWeights, ...]
    classifier: QuantTensor | None  # None when it shares the embedding table
    tokenizer: Tokenizer | None = None

    @property
    def output_weights(self) -> QuantTensor:
        """The matrix that produces logits."""
        return self.embedding if self.classifier is None else self.classifier

    def to_bytes(self) -> bytes:
        """Serialise to the TPMD layout."""
        cfg = self.config
        sections = [_f32(self.rope), _f32(self.rms_att), _f32(self.rms_ffn),
                    _f32(self.rms_final), _tensor_bytes(self.embedding)]
        for layer in self.layers:
            sections.extend(_tensor_bytes(t) for t in layer.tensors())
        if self.classifier is not None:
            sections.append(_tensor_bytes(self.classifier))
        payload = bytearray()
        for section in sections:
            payload += section
            payload += bytes(-len(payload) % 4)
        tokenizer_offset = 0
        if self.tokenizer is not None:
            tokenizer_offset = HEADER_SIZE + len(payload)
            payload += self.tokenizer.to_block()
        flags = FLAG_SHARED_CLASSIFIER if self.classifier is None else 0
        fields = (MAGIC, FORMAT_VERSION, HEADER_SIZE, QUANT_CODES[cfg.quant], 0, cfg.group_size,
                  cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads,
                  cfg.vocab_size, cfg.seq_len, flags, len(payload), zlib.crc32(payload),
                  tokenizer_offset, 0, 0)
        head = _HEADER.pack(*fields)
        head = head[:60] + struct.pack("<I", zlib.crc32(head[:60]))
        return head + bytes(payload)

    def write(self, path: str | Path) -> None:
        """Write the image to `path`."""
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(self.to_bytes())
        except OSError as exc:
            raise results_error(Path(path), exc) from exc

    @classmethod
    def read(cls, path: str | Path) -> TpmModel:
        """Read and fully validate a TPMD file."""
        return cls.from_bytes(_read(path), str(path))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "model") -> TpmModel:
        """Parse an image held in memory; `name` is used in error messages."""
        header = _parse_header(data[:HEADER_SIZE], name, len(data))
        payload = data[HEADER_SIZE:]
        crc = zlib.crc32(payload)
        if crc != header.payload_crc32:
            raise ModelError(f"{name} is corrupt: payload CRC is 0x{crc:08x} but the header "
                             f"says 0x{header.payload_crc32:08x}; {_CONVERT_HINT}")
        return _parse_payload(data, header, name)


def rope_table(seq_len: int, head_size: int, theta: float = 10000.0) -> np.ndarray:
    """(cos, sin) of `pos * theta^(-2i/head_size)`, computed in float64, stored as float32."""
    pos = np.arange(seq_len, dtype=np.float64)[:, None]
    freq = theta ** (-2.0 * np.arange(head_size // 2, dtype=np.float64) / head_size)
    angle = pos * freq[None, :]
    return np.stack([np.cos(angle), np.sin(angle)], axis=-1).astype(np.float32)


def read_header(path: str | Path) -> ModelHeader:
    """Read and check only the header (and the file size): cheap enough for a fit check."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_SIZE)
        size = Path(path).stat().st_size
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror}; check the path") from exc
    return _parse_header(head, str(path), size)


def image_crc32(path: str | Path) -> int:
    """CRC-32 of the whole file, as the board reports it in HELLO."""
    return zlib.crc32(_read(path))


def image_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the whole file, the model's identity in session records."""
    return hashlib.sha256(_read(path)).hexdigest()


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror}; check the path") from exc


def _f32(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def _tensor_bytes(t: QuantTensor) -> bytes:
    q = pack_int4(t.q) if t.bits == 4 else np.ascontiguousarray(t.q, dtype=np.int8).tobytes()
    return q + bytes(-len(q) % 4) + _f32(t.scales)


def int4_row_bytes(cols: int) -> int:
    """Bytes of one packed int4 row: two values a byte, a lone last value in a low nibble."""
    return (cols + 1) // 2


def pack_int4(q: np.ndarray) -> bytes:
    """Pack int8 values in [-8, 7], row by row: value 2k in the low nibble of byte k, 2k+1 in
    the high nibble, as 4-bit two's complement; an odd row ends in a byte whose high nibble is 0."""
    rows, cols = q.shape
    if q.size and (q.min() < -8 or q.max() > 7):
        raise ValueError("int4 values must lie in [-8, 7]")
    nibbles = np.zeros((rows, 2 * int4_row_bytes(cols)), dtype=np.uint8)
    nibbles[:, :cols] = q.astype(np.int16) & 0x0F
    return (nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)).astype(np.uint8).tobytes()


def unpack_int4(data: bytes | memoryview, rows: int, cols: int) -> np.ndarray:
    """The inverse of `pack_int4`: (rows, cols) int8 values in [-8, 7]."""
    packed = np.frombuffer(data, dtype=np.uint8).reshape(rows, int4_row_bytes(cols))
    nibbles = np.empty((rows, 2 * packed.shape[1]), dtype=np.int16)
    nibbles[:, 0::2] = packed & 0x0F
    nibbles[:, 1::2] = packed >> 4
    return ((nibbles[:, :cols] ^ 8) - 8).astype(np.int8)


def _parse_header(head: bytes, name: str, file_size: int) -> ModelHeader:
    if len(head) < HEADER_SIZE:
        raise ModelError(f"{name} is not a tiny-profiler model ({file_size} bytes, shorter "
                         "than the 64-byte header); convert a llama2.c checkpoint with "
                         "`tiny-profiler model convert`")
    (magic, version, header_size, quant, _, group_size, dim, hidden_dim, n_layers, n_heads,
     n_kv_heads, vocab_size, seq_len, flags, payload_size, payload_crc, tok_offset, _,
     header_crc) = _HEADER.unpack(head)
    if magic != MAGIC:
        raise ModelError(f"{name} is not a tiny-profiler model (magic {magic!r}); convert a "
                         "llama2.c checkpoint with `tiny-profiler model convert`")
    if version != FORMAT_VERSION or header_size != HEADER_SIZE:
        raise ModelError(f"{name} is TPMD format version {version} (header {header_size} "
                         f"bytes) but this profiler reads version {FORMAT_VERSION}; "
                         "re-convert it with this profiler's `tiny-profiler model convert`")
    crc = zlib.crc32(head[:60])
    if crc != header_crc:
        raise ModelError(f"{name} is corrupt: header CRC is 0x{crc:08x} but the file says "
                         f"0x{header_crc:08x}; {_CONVERT_HINT}")
    if quant not in QUANT_NAMES:
        known = ", ".join(f"{code} = {name}" for code, name in QUANT_NAMES.items())
        raise ModelError(f"{name} uses quantization code {quant}, which this profiler does not "
                         f"know ({known}); re-convert it with `--quant int8` or `--quant int4`")
    config = ModelConfig(dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len,
                         group_size, bool(flags & FLAG_SHARED_CLASSIFIER), QUANT_NAMES[quant])
    problem = config.problem()
    if problem:
        raise ModelError(f"{name} has an unusable shape: {problem}; {_CONVERT_HINT}")
    if file_size != HEADER_SIZE + payload_size:
        raise ModelError(f"{name} is {file_size} bytes but its header says "
                         f"{HEADER_SIZE + payload_size}; the file is truncated or has "
                         f"trailing data, copy it again or {_CONVERT_HINT}")
    return ModelHeader(config, config.quant, payload_size, payload_crc, tok_offset, header_crc)


class _Cursor:
    """Walks the payload section by section, each aligned to 4 bytes."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.name, self.offset = data, name, HEADER_SIZE

    def take(self, nbytes: int) -> memoryview:
        self.offset += -self.offset % 4
        end = self.offset + nbytes
        if end > len(self.data):
            raise ModelError(f"{self.name} is too short for the shape in its header "
                             f"(needs at least {end} bytes, has {len(self.data)}); "
                             f"{_CONVERT_HINT}")
        view = memoryview(self.data)[self.offset:end]
        self.offset = end
        return view

    def f32(self, *shape: int) -> np.ndarray:
        return np.frombuffer(self.take(4 * math.prod(shape)), dtype="<f4").reshape(shape)

    def tensor(self, rows: int, cols: int, group_size: int, bits: int) -> QuantTensor:
        groups = math.ceil(cols / group_size)
        if bits == 4:
            q = unpack_int4(self.take(rows * int4_row_bytes(cols)), rows, cols)
        else:
            q = np.frombuffer(self.take(rows * cols), dtype=np.int8).reshape(rows, cols)
        return QuantTensor(q, self.f32(rows, groups), group_size, bits)


def _parse_payload(data: bytes, header: ModelHeader, name: str) -> TpmModel:
    cfg = header.config
    d, h, kv, gs, bits = cfg.dim, cfg.hidden_dim, cfg.kv_dim, cfg.group_size, QUANT_BITS[cfg.quant]
    cur = _Cursor(data, name)
    rope = cur.f32(cfg.seq_len, cfg.head_size // 2, 2)
    rms_att = cur.f32(cfg.n_layers, d)
    rms_ffn = cur.f32(cfg.n_layers, d)
    rms_final = cur.f32(d)
    embedding = cur.tensor(cfg.vocab_size, d, gs, bits)
    shapes = ((d, d), (kv, d), (kv, d), (d, d), (h, d), (d, h), (h, d))
    layers = tuple(LayerWeights(*(cur.tensor(r, c, gs, bits) for r, c in shapes))
                   for _ in range(cfg.n_layers))
    classifier = None if cfg.shared_classifier else cur.tensor(cfg.vocab_size, d, gs, bits)
    weights_end = cur.offset + (-cur.offset % 4)
    tokenizer = None
    if header.tokenizer_offset:
        if header.tokenizer_offset != weights_end:
            raise ModelError(f"{name} puts its tokenizer at offset {header.tokenizer_offset} "
                             f"but the weights end at {weights_end}; {_CONVERT_HINT}")
        try:
            tokenizer = Tokenizer.from_block(data[weights_end:])
        except ValueError as exc:
            raise ModelError(f"{name} has a broken tokenizer block ({exc}); "
                             f"{_CONVERT_HINT}") from exc
        if tokenizer.vocab_size != cfg.vocab_size:
            raise ModelError(f"{name} has a {tokenizer.vocab_size}-token tokenizer for a "
                             f"{cfg.vocab_size}-token model; {_CONVERT_HINT}")
    elif cur.offset != len(data):
        raise ModelError(f"{name} has {len(data) - cur.offset} bytes after its weights and no "
                         f"tokenizer; {_CONVERT_HINT}")
    return TpmModel(cfg, rope, rms_att, rms_ffn, rms_final, embedding, layers, classifier,
                    tokenizer)
