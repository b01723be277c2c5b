"""How a sendout's entries spread in time (connectly_declare.policy.summary), for the text
and Markdown plans: entries per local hour of delivery and per UTC hour, what quiet hours
and frequency caps did, and where the recipients' zones came from. Zone names come from
data (a recipient field), so they are escaped like any other data."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from connectly_declare import words
from connectly_declare.report import escape

_BARS = " ▁▂▃▄▅▆▇█"


def _spark(hours: Mapping[str, int]) -> str:
    peak = max(hours.values(), default=0)
    if not peak:
        return "·" * 24
    cells = []
    for hour in range(24):
        count = hours.get(f"{hour:02d}", 0)
        cells.append("·" if not count else _BARS[max(1, round(count * 8 / peak))])
    return "".join(cells)


def _peak(hours: Mapping[str, int]) -> str:
    if not hours:
        return "none"
    hour, count = max(hours.items(), key=lambda item: (item[1], -int(item[0])))
    return f"peak {hour}:00 with {count:,}"


def _zones(timing: Mapping[str, Any], plain: bool) -> str:
    origin = timing.get("zones", {})
    parts = [f"{origin.get('from_number', 0):,} from the number",
             f"{origin.get('given', 0):,} given", f"{origin.get('fallback', 0):,} fallback"]
    top = ", ".join(f"{name} {count:,}" for name, count in timing.get("top_zones", []))
    zones = timing.get("zone_count", 0)
    text = (f"zones: {', '.join(parts)} ({words.count(zones, 'zone')}"
            + (f": {top}" if top else "") + ")")
    return escape.terminal(text) if plain else escape.markdown_text(text)


def _held_back(timing: Mapping[str, Any]) -> str:
    return (f"{timing.get('shifted', 0):,} shifted by quiet hours, "
            f"{timing.get('held', 0):,} held, {timing.get('capped', 0):,} capped")


def text_lines(timing: Mapping[str, Any]) -> Iterator[str]:
    """The text plan's lines for one sendout (none when it has no timing policy)."""
    if not timing:
        return
    local, utc = timing.get("local_hours", {}), timing.get("utc_hours", {})
    yield f"    local hour 00 {_spark(local)} 23  (to send: {_peak(local)})\n"
    yield f"    UTC hour   00 {_spark(utc)} 23  (to send: {_peak(utc)})\n"
    yield f"    {_held_back(timing)}; {_zones(timing, True)}\n"


def markdown_block(name: str, timing: Mapping[str, Any]) -> str:
    """The Markdown plan's block for one sendout ("" when it has no timing policy)."""
    if not timing:
        return ""
    local, utc = timing.get("local_hours", {}), timing.get("utc_hours", {})
    rows = ["| hour | local | UTC |", "| --- | ---: | ---: |"]
    for hour in sorted(set(local) | set(utc)):
        rows.append(f"| {hour}:00 | {local.get(hour, 0):,} | {utc.get(hour, 0):,} |")
    if len(rows) == 2:
        rows.append("| (nothing to send) | 0 | 0 |")
    return (f"<details><summary>{escape.markdown_text(name, in_html=True)}: when "
            f"({escape.markdown_text(_held_back(timing), in_html=True)})</summary>\n\n"
            + "\n".join(rows) + f"\n\n{_zones(timing, False)}\n\n</details>\n\n")


__all__ = ["markdown_block", "text_lines"]
