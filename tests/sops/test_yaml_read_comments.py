"""Where a comment lands when a list item's `-` stands on a line of its own, followed
only by a comment (found by the round-trip property test)."""

from __future__ import annotations

from aivault_ops.sops.stores import parse_plaintext
from aivault_ops.sops.tree import Comment, Entry, TreeList, TreeMap

_TEXT = b"""first:
    inner: v
second:
    # a
    - # b
      - key: w
    # c
"""


def _comments(container: TreeMap | TreeList) -> list[str]:
    return [item.text for item in container.items if isinstance(item, Comment)]


def test_a_comment_after_a_nested_list_stays_in_that_list() -> None:
    (document,) = parse_plaintext(_TEXT, "yaml", "<test>")
    first, second = (item for item in document.items if isinstance(item, Entry))
    assert isinstance(first.value, TreeMap) and isinstance(second.value, TreeList)
    assert _comments(first.value) == []
    assert _comments(second.value) == [" a", " b", " c"]
    assert isinstance(second.value.items[-1], Comment)  # after the item, where it was


def test_the_dash_on_the_node_s_own_line_is_unchanged() -> None:
    (document,) = parse_plaintext(b"list:\n  - a\n  # end\n", "yaml", "<test>")
    (entry,) = document.items
    assert isinstance(entry, Entry) and isinstance(entry.value, TreeList)
    assert entry.value.items == ["a", Comment(" end")]


def test_a_comment_after_a_bare_dash_goes_before_the_item_that_dash_opens() -> None:
    text = b"""list:
    - key: v
    # a
    - # b
      - - w
"""
    (document,) = parse_plaintext(text, "yaml", "<test>")
    (entry,) = document.items
    assert isinstance(entry, Entry) and isinstance(entry.value, TreeList)
    first, a, b, nested = entry.value.items  # "# b" was: the end of the map above
    assert first == TreeMap([Entry("key", "v")])
    assert (a, b) == (Comment(" a"), Comment(" b"))
    assert nested == TreeList([TreeList(["w"])])
