"""Chunk frames a socket fell behind on go out as one frame, in order, nothing lost."""

import orjson

from app.api.socket.delivery import JOINED_CHARS, coalesce

DONE = '{"type":"done","data":{}}'


def chunk(text: str, seq: int) -> str:
    return orjson.dumps({"type": "chunk", "data": text, "seq": seq}).decode()


def test_a_single_frame_goes_out_as_it_is() -> None:
    assert coalesce([chunk("Maya", 1)]) == [chunk("Maya", 1)]


def test_consecutive_chunks_become_one_with_the_last_seq() -> None:
    frames = [chunk("Maya ", 4), chunk('is "a"', 5), chunk(" backend\nengineer", 6)]

    assert coalesce(frames) == [chunk('Maya is "a" backend\nengineer', 6)]


def test_other_frames_keep_their_place_between_joined_chunks() -> None:
    frames = [chunk("a", 1), chunk("b", 2), DONE]

    assert coalesce(frames) == [chunk("ab", 2), DONE]
    assert coalesce([chunk("a", 1), DONE]) == [chunk("a", 1), DONE]
    assert coalesce([DONE]) == [DONE]


def test_a_long_backlog_goes_out_in_frames_of_bounded_size() -> None:
    frames = [chunk("x" * 1000, seq) for seq in range(1, 21)]

    sent = coalesce(frames)

    assert 1 < len(sent) < len(frames)
    assert all(len(frame) <= JOINED_CHARS for frame in sent)
    assert "".join(orjson.loads(frame)["data"] for frame in sent) == "x" * 20_000
    assert orjson.loads(sent[-1])["seq"] == 20
