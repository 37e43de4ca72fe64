"""The model file's container as the core reads and writes it (src/cpp/io), checked from
outside: a file the core writes is plain safetensors that a few lines of Python (json + struct)
read back, with a checksum hashlib reproduces; files Python's json writes are read by the core;
and every reading rule and bound of docs/model-format.md is enforced at its exact limit."""

import json
import os
import struct

import numpy as np
import pytest
from conftest import file_checksum

from cnnx import saving

META = {"format": "cnnx", "format_version": "1"}


def plain_read(blob):
    """A safetensors reader in plain Python: header, tensors (in the order of their data), data."""
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    data = blob[8 + n :]
    tensors = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1].get("data_offsets", [-1])):
        if name == "__metadata__":
            continue
        assert set(info) == {"dtype", "shape", "data_offsets"} and info["dtype"] == "F32"
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], "<f4").reshape(info["shape"])
    return n, header, data, tensors


def blob_of(entries, meta=None, data=b"", text=None, checksum=True, ensure_ascii=True):
    """A file around arbitrary header entries, written by Python's json (with spaces, in the
    given order), with a correct checksum unless told otherwise."""
    header = dict(entries)
    header["__metadata__"] = dict(META, **(meta or {}))
    if checksum:
        header["__metadata__"]["sha256"] = file_checksum(header, data)
    raw = (text if text is not None else json.dumps(header, ensure_ascii=ensure_ascii)).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def refused(tmp_path, blob, match):
    path = tmp_path / "bad.cnnx"
    path.write_bytes(blob)
    with pytest.raises(ValueError, match=match) as info:
        saving.read_file(path)
    assert str(info.value).startswith(f"cannot load {str(path)!r}: ")
    return str(info.value)


def read(tmp_path, blob):
    path = tmp_path / "ok.cnnx"
    path.write_bytes(blob)
    return saving.read_file(path)


TEXTS = {
    "plain": "model",
    "accents": "café naïve",
    "astral": "emoji \U0001f600 and \U00010348",
    "controls": "tab\tnewline\ncr\rbell\x07del\x7fnul\x00",
    "quotes": 'a "quoted" \\ back/slash',
    "json": json.dumps({"name": "réseau", "layers": [1, 2]}),
}


def test_core_written_file_is_plain_safetensors(tmp_path, rng):
    tensors = {
        "weights/conv/kernel": rng.standard_normal((3, 3, 2, 4)).astype(np.float32),
        "weights/conv/bias": rng.standard_normal(4).astype(np.float32),
        "scalar": np.array(2.5, np.float32),
        "empty": np.zeros((0, 7), np.float32),
        "rank8": rng.standard_normal((1, 2, 1, 2, 1, 2, 1, 3)).astype(np.float32),
        "weights/d\u00e9nse/kernel": rng.standard_normal((5, 6)).astype(np.float32),
    }
    path = tmp_path / "m.cnnx"
    saving.write_file(path, tensors, TEXTS, version="2")
    blob = path.read_bytes()
    n, header, data, plain = plain_read(blob)
    assert n % 8 == 0 and len(blob[8 : 8 + n].rstrip(b" ")) > n - 8  # padded with at most 7 spaces
    assert blob[8 : 8 + n].isascii()  # non-ASCII escaped as Python's json.dumps does
    meta = header["__metadata__"]
    assert meta == {**TEXTS, "format": "cnnx", "format_version": "2", "sha256": meta["sha256"]}
    assert meta["sha256"] == file_checksum(header, data)
    assert list(plain) == list(tensors)  # the data in the order given, back to back
    assert len(data) == sum(t.nbytes for t in tensors.values())
    for name, t in tensors.items():
        np.testing.assert_array_equal(plain[name], t)
        assert plain[name].shape == t.shape
    got, got_meta = saving.read_file(path)
    assert got_meta == {**TEXTS, "format": "cnnx", "format_version": "2"}
    assert list(got) == list(tensors)
    for name, t in tensors.items():
        assert got[name].dtype == np.float32 and got[name].shape == t.shape
        np.testing.assert_array_equal(got[name], t)


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_core_reads_files_pythons_json_writes(tmp_path, rng, ensure_ascii):
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    data = b.tobytes() + a.tobytes()
    entries = {  # not in the order of the data, nor sorted; raw UTF-8 or escapes
        "z\u00e9": {"dtype": "F32", "shape": [2, 3], "data_offsets": [16, 40]},
        "b\U0001f600": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
    }
    got, meta = read(tmp_path, blob_of(entries, dict(TEXTS), data, ensure_ascii=ensure_ascii))
    assert list(got) == ["b\U0001f600", "z\u00e9"]
    np.testing.assert_array_equal(got["z\u00e9"], a)
    np.testing.assert_array_equal(got["b\U0001f600"], b)
    assert meta == {**TEXTS, **META}


def test_duplicate_keys_count_once_as_in_python(tmp_path):
    entry = '{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}'
    header = {"t": json.loads(entry), "__metadata__": dict(META)}
    header["__metadata__"]["sha256"] = file_checksum(header, bytes(4))
    text = '{"t": {"dtype": "F16"}, "t": ' + entry + ', "__metadata__": ' + json.dumps(header["__metadata__"]) + "}"
    got, _ = read(tmp_path, blob_of({}, text=text, data=bytes(4)))
    assert list(got) == ["t"]


T = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize(
    "blob,match",
    [
        (b"", r"the file is empty$"),
        (b"\x00" * 7, r"the file is truncated \(7 bytes; expected at least an 8-byte header length\)"),
        (struct.pack("<Q", 9) + b"{}      ", "the header length field says 9 bytes but the file has 8 after it"),
        (struct.pack("<Q", 2**64 - 1) + b"{}", "header length field says 18446744073709551615 bytes"),
        (struct.pack("<Q", 8) + b'{"a":"\xff"}', r"not valid UTF-8 \(byte 0xff at position 6\)"),
        (struct.pack("<Q", 8) + b'"\xed\xa0\x80"    ', "not valid UTF-8"),  # an encoded surrogate
        (struct.pack("<Q", 8) + b'"\xc0\xaf"     ', "not valid UTF-8"),  # an overlong '/'
        (struct.pack("<Q", 8) + b"\xef\xbb\xbf{}   ", "the header is not valid JSON"),  # a byte-order mark
        (struct.pack("<Q", 8) + b"{]      ", r"the header is not valid JSON \(parse error"),
        (struct.pack("<Q", 8) + b"[NaN]   ", "the header is not valid JSON"),
        (struct.pack("<Q", 8) + b"{} /**/ ", "the header is not valid JSON"),
        (struct.pack("<Q", 8) + b"[]      ", "the header is not a JSON object"),
        (struct.pack("<Q", 8) + b"{}      ", r"not a cnnx model file \(no '__metadata__' with format 'cnnx'\)"),
        (blob_of({}, {"format": "CNNX"}), "not a cnnx model file"),
        (
            blob_of({}, {"format_version": "3"}),
            r"format version '3' is not supported \(this cnnx reads versions 1 and 2\)",
        ),
        (blob_of({}, {"format_version": 2}), "format version 2 is not supported"),
        (blob_of({}, {"contents": ["model"]}), "metadata 'contents' is not a string"),
        (blob_of({}, {"sha256": 5}, checksum=False), "metadata 'sha256' is not a string"),
        (blob_of({"t": {"dtype": "F32", "shape": [2]}}, data=bytes(8)), r"tensor 't' has a malformed entry .*exactly"),
        (blob_of({"t": {**T, "extra": 1}}, data=bytes(8)), "exactly 'dtype', 'shape' and 'data_offsets'"),
        (blob_of({"t": {**T, "dtype": "F16"}}, data=bytes(8)), "expected dtype 'F32', received 'F16'"),
        (blob_of({"t": {**T, "shape": [1] * 9}}, data=bytes(8)), "expected 'shape' as a list of at most 8 integers"),
        (blob_of({"t": {**T, "shape": [-1]}}, data=bytes(8)), r"in \[0, 2147483647\]"),
        (blob_of({"t": {**T, "shape": [2**31]}}, data=bytes(8)), r"in \[0, 2147483647\]"),
        (blob_of({"t": {**T, "shape": [True]}}, data=bytes(8)), "expected 'shape'"),
        (blob_of({"t": {**T, "shape": 2}}, data=bytes(8)), "expected 'shape'"),
        (blob_of({"t": {**T, "data_offsets": [8, 0]}}, data=bytes(8)), r"'data_offsets' as \[begin, end\]"),
        (blob_of({"t": {**T, "data_offsets": [-8, 0]}}, data=bytes(8)), "'data_offsets'"),
        (blob_of({"t": {**T, "data_offsets": [0, 8.0]}}, data=bytes(8)), "'data_offsets'"),
        (blob_of({"t": {**T, "data_offsets": [0, 8, 8]}}, data=bytes(8)), "'data_offsets'"),
        (blob_of({"t": {**T, "shape": [3]}}, data=bytes(8)), r"tensor 't' of shape \(3,\) does not match its byte"),
        (
            blob_of({"t": {**T, "shape": [2**31 - 1] * 8}}, data=bytes(8)),
            r"shape \(2147483647, .*\) does not match its byte range \[0, 8\)",
        ),
        (blob_of({"t": {**T, "shape": [0, 2**31 - 1]}}, data=bytes(8)), "does not match its byte range"),
        (blob_of({"t": T}, data=bytes(4)), "truncated: tensor 't' ends at byte 8 of the data but only 4"),
        (blob_of({"t": T}, data=bytes(12)), "4 unexpected bytes after the tensor data"),
        (
            blob_of({"a": T, "b": {**T, "data_offsets": [4, 12]}}, data=bytes(12)),
            "tensor data overlaps or leaves gaps at byte 8",
        ),
        (
            blob_of({"a": T, "b": {**T, "data_offsets": [12, 20]}}, data=bytes(20)),
            "tensor data overlaps or leaves gaps at byte 8",
        ),
        (blob_of({"t": T}, data=bytes(8), checksum=False), "do not match their SHA-256 checksum"),
        (  # the right digest in capitals: compared exactly, as lowercase hex
            blob_of({}, {"sha256": file_checksum({"__metadata__": META}, b"").upper()}, checksum=False),
            "SHA-256 checksum",
        ),
    ],
)
def test_reading_rules(tmp_path, blob, match):
    refused(tmp_path, blob, match)


def test_a_flipped_bit_anywhere_is_refused(tmp_path, rng):
    """Header (names, shapes, metadata, padding), length field or data: the checksum or a
    structural rule catches every single flipped bit."""
    path = tmp_path / "m.cnnx"
    saving.write_file(path, {"w": rng.standard_normal((4, 4)).astype(np.float32)}, {"contents": "weights"})
    blob = bytearray(path.read_bytes())
    for i in range(len(blob)):
        for bit in (0, 5):
            blob[i] ^= 1 << bit
            with pytest.raises(ValueError):
                saving._read_bytes(bytes(blob))
            blob[i] ^= 1 << bit
    saving._read_bytes(bytes(blob))  # restored: read


def test_nesting_bound_is_32_levels(tmp_path):
    def nested(levels):  # the header object is level 1
        text = '{"__metadata__": {"format": "cnnx", "format_version": "1"}, "t": ' + "[" * (levels - 1)
        return blob_of({}, text=text + "]" * (levels - 1) + "}")

    refused(tmp_path, nested(32), "tensor 't' has a malformed entry")  # parsed: the entry is checked
    refused(tmp_path, nested(33), "the header is nested more than 32 levels deep")
    refused(tmp_path, nested(100_000), "the header is nested more than 32 levels deep")


def test_bracket_bound_counts_before_parsing(tmp_path):
    def brackets(extra):  # '{' of the header and of __metadata__, then '[' inside a string
        return blob_of(
            {}, text='{"__metadata__": {"format": "cnnx", "format_version": "1", "x": "' + "[" * extra + '"}}'
        )

    refused(tmp_path, brackets(2**20 - 2), "SHA-256")  # 2**20 in all: parsed
    refused(tmp_path, brackets(2**20 - 1), "the header holds 1048577 JSON arrays or objects; expected at most 1048576")


def test_header_bound_is_16_mib(tmp_path):
    limit = 16 * 2**20
    refused(tmp_path, struct.pack("<Q", limit + 8) + b" " * (limit + 8), f"header length field says {limit + 8} bytes")
    text = '{"__metadata__": {"format": "cnnx", "format_version": "1", "x": "'
    blob = blob_of({}, text=text + "y" * (limit - len(text) - 3) + '"}}')
    assert struct.unpack("<Q", blob[:8])[0] == limit
    refused(tmp_path, blob, "SHA-256")  # read and parsed at exactly 16 MiB


def test_tensor_count_bound(tmp_path):
    def many(n):
        return blob_of({f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(n)})

    got, _ = read(tmp_path, many(2**17))
    assert len(got) == 2**17 and all(t.shape == (0,) for t in got.values())
    refused(tmp_path, many(2**17 + 1), "the header lists 131073 tensors; expected at most 131072")


def test_tensor_name_bound_counts_characters(tmp_path):
    def named(name):
        return blob_of({name: {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}}, data=bytes(4))

    got, _ = read(tmp_path, named("\u00e9" * 4096))  # 8192 bytes, 4096 characters
    assert list(got) == ["\u00e9" * 4096] and got["\u00e9" * 4096].shape == ()
    message = refused(tmp_path, named("x" * 4097), "a tensor name is 4097 characters long; expected at most 4096")
    assert len(message) < 400


def test_messages_from_hostile_values_are_short_and_printable(tmp_path):
    entry = {"dtype": "\x00\x1b[31m" + "x" * 100_000, "shape": [1], "data_offsets": [0, 4]}
    message = refused(tmp_path, blob_of({"t": entry}, data=bytes(4)), "expected dtype 'F32'")
    assert len(message) < 1000 and message.isprintable()


def test_writer_refuses_what_the_reader_would(tmp_path):
    path = tmp_path / "w.cnnx"
    ok = np.zeros(2, np.float32)
    for tensors, meta, match in [
        ({"__metadata__": ok}, {}, "tensor name '__metadata__' is reserved"),
        ({"t": np.zeros([1] * 9, np.float32)}, {}, r"at most 8 axes"),
        ({"t": ok}, {"x": "y" * (16 * 2**20)}, "header holds at most 16777216"),
        ({"x" * 4097: ok}, {}, "longer than 4096 characters"),
    ]:
        with pytest.raises(ValueError, match=match):
            saving.write_file(path, tensors, meta)
    with pytest.raises(ValueError, match="expected format_version '1' or '2', received '3'"):
        saving.write_file(path, {"t": ok}, {}, version="3")
    assert os.listdir(tmp_path) == []  # refused before a temp file existed


def test_writer_computes_format_and_checksum(tmp_path):
    path = tmp_path / "w.cnnx"
    saving.write_file(path, {"t": np.arange(3, dtype=np.float32)}, {"format": "other", "sha256": "forged"})
    _, header, data, _ = plain_read(path.read_bytes())
    assert header["__metadata__"]["format"] == "cnnx"
    assert header["__metadata__"]["sha256"] == file_checksum(header, data)


def test_bytes_and_file_readers_agree(tmp_path, rng):
    path = tmp_path / "m.cnnx"
    saving.write_file(path, {"a": rng.standard_normal((3, 2)).astype(np.float32)}, {"k": "v"})
    (ta, ma), (tb, mb) = saving.read_file(path), saving._read_bytes(path.read_bytes())
    assert ma == mb and list(ta) == list(tb)
    np.testing.assert_array_equal(ta["a"], tb["a"])
    with pytest.raises(ValueError, match=r"^cannot load '<bytes>': the file is truncated"):
        saving._load_model_bytes(path.read_bytes()[:-1])
    with pytest.raises(IsADirectoryError):
        saving.read_file(tmp_path)
