"""The one helper for periodic actions."""

from trainables.periodic import due


def test_every_n_steps_with_the_first_and_last():
    assert [s for s in range(11) if due(s, 4, 10)] == [0, 4, 8, 10]
    assert [s for s in range(11) if due(s, 4, 10, first=False, last=False)] == [4, 8]
    assert [s for s in range(11) if due(s, 0, 10)] == [0, 10]  # 0: only the ends
    assert [s for s in range(9) if due(s, 4, 8, first=False)] == [4, 8]  # the last once
