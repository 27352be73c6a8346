"""The vectorised decoder and the reference decoder agree; each payload problem has its reason."""

from __future__ import annotations

import json
import random

import polars as pl
from polars.testing import assert_frame_equal

from ingest.decode import _fast, _read_exact, _sample_keys, decode_batch
from ingest.decode_reference import decode_reference as _slow
from schemas.wire import NUMERIC_QUANTITIES

T = "telemetry/plant/m1"
LIMIT = 256 * 1024


def random_message(rng: random.Random, device: str) -> bytes:
    def reading() -> dict[str, object]:
        r: dict[str, object] = {
            "ts": rng.choice(
                [
                    1795219200000 + rng.randrange(10**6),
                    "2026-11-21T08:00:00.250+08:00",
                    "2026-11-21T00:00:01Z",
                ]
            ),
        }
        for q in rng.sample(NUMERIC_QUANTITIES, rng.randrange(1, 5)):
            r[q] = rng.choice([rng.random() * 100, rng.randrange(0, 500)])
        if rng.random() < 0.2:
            r["state"] = rng.choice(["running", "stopped", "idle"])
        if rng.random() < 0.1:
            r["vibration_mm_s"] = rng.choice([1, 2.5, "x", True])
        return r

    if rng.random() < 0.5:
        return json.dumps(reading()).encode()
    meta = {"device_id": device, "gateway": "gw", "seq": rng.randrange(10**9)}
    return json.dumps(
        {**meta, "readings": [reading() for _ in range(rng.randrange(1, 6))]}
    ).encode()


def assert_same_candidates(fast: pl.DataFrame, slow: pl.DataFrame) -> None:
    """Equal but for `ts_ms`, a hint a decoder may leave out (polars reads a batch of mixed
    integer and text ts as text); where both set it, it is the same."""
    key = ["_msg", "_idx"]
    fast, slow = fast.sort(key), slow.sort(key)
    assert_frame_equal(fast.drop("ts_ms"), slow.drop("ts_ms"))
    both = fast["ts_ms"].is_not_null() & slow["ts_ms"].is_not_null()
    assert fast["ts_ms"].filter(both).equals(slow["ts_ms"].filter(both))
    assert (fast["ts_ms"].is_not_null() <= slow["ts_ms"].is_not_null()).all()


def test_fast_and_reference_paths_agree_on_random_batches() -> None:
    rng = random.Random(7)
    for _ in range(30):
        payloads = [random_message(rng, "m1") for _ in range(rng.randrange(1, 40))]
        ids = list(range(len(payloads)))
        fast = _fast(ids, payloads, ["m1"] * len(payloads))
        slow = _slow(ids, payloads, ["m1"] * len(payloads))
        if fast is None:  # mixed types in an unknown field may force the slow path: fine
            continue
        key = ["_msg", "_idx"]
        assert_same_candidates(fast.candidates, slow.candidates)
        assert_frame_equal(fast.rejects.sort(key), slow.rejects.sort(key))


def test_clean_batch_takes_the_fast_path() -> None:
    payloads = [
        b'{"ts": 1795219200000, "power_kw": 1}',
        b'{"readings": [{"ts": "2026-11-21T08:00:00Z", "current_a": 3}]}',
    ]
    _, decoded = decode_batch([T, T], payloads, LIMIT)
    assert decoded.fast_path
    assert decoded.candidates.height == 2
    assert decoded.rejects.is_empty()


def test_one_bad_message_does_not_stop_its_batch() -> None:
    payloads = [
        b'{"ts": 1795219200000, "power_kw": 1}',
        b"{oops",
        b'{"ts": 1795219200001, "power_kw": 2}',
    ]
    _, decoded = decode_batch([T] * 3, payloads, LIMIT)
    assert not decoded.fast_path
    assert decoded.candidates["power_kw"].to_list() == [1.0, 2.0]
    assert decoded.rejects.select("_msg", "reason").rows() == [(1, "malformed_json")]


def test_pretty_printed_and_padded_json_is_accepted() -> None:
    pretty = json.dumps({"ts": 1795219200000, "power_kw": 1.5}, indent=2).encode()
    _, decoded = decode_batch([T, T], [pretty, b"  " + pretty + b"\n"], LIMIT)
    assert decoded.candidates["power_kw"].to_list() == [1.5, 1.5]


def test_payload_level_reasons() -> None:
    topics = [T, T, "telemetry/plant", "other/plant/m1", T]
    payloads = [b"", b"\xc3\x28", b"{}", b"{}", b"x" * (LIMIT + 1)]
    messages, decoded = decode_batch(topics, payloads, LIMIT)
    reasons = decoded.rejects.sort("_msg")["reason"].to_list()
    assert reasons == ["malformed_json", "not_utf8", "bad_topic", "bad_topic", "oversize"]
    assert messages["payload"].to_list() == payloads, "raw bytes are kept for quarantine"


def test_null_is_absent_and_digit_strings_are_epoch_ms() -> None:
    payloads = [b'{"ts": "1795219200000", "power_kw": 1, "current_a": null, "note": null}']
    for fast in (True, False):
        decoded = (_fast if fast else _slow)([0], payloads, ["m1"])
        assert decoded is not None
        row = decoded.candidates.row(0, named=True)
        assert (row["ts_raw"], row["current_a"], row["_unknown"]) == ("1795219200000", None, None)


def test_batch_shape_problems() -> None:
    payloads = [
        b'{"readings": [null]}',
        b'{"readings": [{"ts": 1, "power_kw": 1}], "ts": 5}',
        b'{"readings": {"ts": 1}}',
        b'{"seq": "7", "ts": 1, "power_kw": 1}',
    ]
    _, decoded = decode_batch([T] * 4, payloads, LIMIT)
    assert decoded.rejects.sort("_msg")["reason"].to_list() == ["wrong_shape"] * 4
    assert decoded.candidates.is_empty()
    assert pl.Series(decoded.rejects["detail"]).str.len_chars().min() > 10  # type: ignore[operator]


# Twists that must send a batch off the exact (pyarrow) read, or that it must read exactly.
TWISTS: list[bytes] = [
    b'{"ts": 1795219200000, "power_kw": 1, "note": 3}',  # unknown key
    b'{"readings": [{"ts": 1795219200000, "power_kw": 1, "rpm": 5}]}',  # unknown nested key
    b'{"ts": 1795219200000, "power_kw": 1, "power_kw": 2}',  # duplicate key
    b'{"readings": [{"ts": 1795219200000, "ts": 1795219200001, "power_kw": 1}]}',
    b'{"ts": 1795219200000, "power_kw": true}',
    b'{"ts": 1795219200000, "power_kw": "12"}',
    b'{"seq": 1.0, "ts": 1795219200000, "power_kw": 1}',
    b'{"seq": 99999999999999999999, "ts": 1795219200000, "power_kw": 1}',
    b'{"ts": 1795219200000, "power_kw": 1e400}',
    b'{"ts": 1795219200000.5, "power_kw": 1}',
    b'{"ts": "2026-11-21T00:00:01Z", "power_kw": 1}',  # other ts kind than the batch's
    b'{"ts": 1795219200000, "power_kw": 1}{"ts": 1795219200001, "power_kw": 2}',
    b"[1, 2]",
    b"5",
    b'{"device_id": 7, "ts": 1795219200000, "power_kw": 1}',
    b'{"readings": [{"ts": 1795219200000, "power_kw": 1}], "ts": 5}',  # stray beside readings
    b'{"readings": {"ts": 1795219200000}}',
    b'{"ts": 1795219200000, "state": 3}',
    # read exactly: null is absent, empty and null-holding readings, ints as numbers, {}
    b'{"ts": 1795219200000, "power_kw": null, "current_a": 4}',
    b'{"readings": []}',
    b'{"readings": [null]}',
    b'{"readings": null, "seq": 4}',
    b"{}",
    b'{"device_id": "m2", "readings": [{"ts": 1795219200000, "power_kw": 1}]}',
    b'{"ts": 1795219200000, "power_kw": -0.0, "voltage_v": 1E2, "state": "running"}',
]


def clean_message(rng: random.Random, quoted_ts: bool, batch: bool) -> bytes:
    def reading() -> dict[str, object]:
        ms = 1795219200000 + rng.randrange(10**6)
        r: dict[str, object] = {"ts": f"2026-11-21T00:{ms % 60:02d}:01Z" if quoted_ts else ms}
        for q in rng.sample(NUMERIC_QUANTITIES, rng.randrange(1, 5)):
            r[q] = rng.choice([rng.random() * 10 ** rng.randrange(-3, 6), rng.randrange(-9, 500)])
        if rng.random() < 0.2:
            r["state"] = rng.choice(["running", "stopped", "idle"])
        return r

    if not batch:
        return json.dumps(reading()).encode()
    meta = {"device_id": "m1", "gateway": "gw", "seq": rng.randrange(10**9)}
    return json.dumps(
        {**meta, "readings": [reading() for _ in range(rng.randrange(1, 6))]}
    ).encode()


def test_exact_read_and_reference_agree_with_and_without_twists() -> None:
    """Clean batches take the pyarrow read; any twist either leaves it or is read exactly."""
    rng = random.Random(11)
    exact = 0
    for n in range(400):
        quoted = rng.random() < 0.5
        shape = rng.choice(["single", "batch", "mixed"])
        payloads = [
            clean_message(
                rng, quoted, shape == "batch" or (shape == "mixed" and rng.random() < 0.5)
            )
            for _ in range(rng.randrange(1, 30))
        ]
        twisted = n % 2 == 1
        if twisted:
            payloads.insert(rng.randrange(len(payloads) + 1), rng.choice(TWISTS))
        text = b"\n".join(payloads)
        read = _read_exact(text, len(payloads), _sample_keys(payloads))
        if not twisted and shape != "mixed":
            assert read is not None, payloads
        exact += read is not None
        ids = list(range(len(payloads)))
        _, fast = decode_batch([T] * len(payloads), payloads, LIMIT)
        slow = _slow(ids, payloads, ["m1"] * len(payloads))
        key = ["_msg", "_idx"]
        assert_same_candidates(fast.candidates, slow.candidates)
        assert_frame_equal(fast.rejects.sort(key), slow.rejects.sort(key))
    assert exact > 200


def test_exact_read_refuses_what_the_contract_types_do_not_allow() -> None:
    base = b'{"ts": 1795219200000, "power_kw": 1}'
    for twist in TWISTS[:18]:
        payloads = [base, twist]
        read = _read_exact(b"\n".join(payloads), 2, _sample_keys([base]))
        assert read is None, twist


def test_exact_read_rounds_numbers_like_python() -> None:
    rng = random.Random(3)
    literals = [repr(rng.random() * 10 ** rng.randrange(-8, 9)) for _ in range(3000)]
    literals += [
        f"{rng.randrange(10**25)}.{rng.randrange(10**25)}e{rng.randrange(-30, 30)}"
        for _ in range(3000)
    ]
    literals += [str(rng.randrange(-(2**63), 2**63)) for _ in range(3000)]
    payloads = [b'{"ts": 1795219200000, "power_kw": %s}' % lit.encode() for lit in literals]
    read = _read_exact(b"\n".join(payloads), len(payloads), _sample_keys(payloads))
    assert read is not None
    assert read["power_kw"].to_list() == [float(lit) for lit in literals]
