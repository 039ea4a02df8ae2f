"""Geometry of the status page's stacked bar chart, drawn as inline SVG by the template."""

from dataclasses import dataclass, field

WIDTH = 720
HEIGHT = 200
MARGIN_LEFT = 40
MARGIN_BOTTOM = 20
OUTCOMES = ("succeeded", "failed", "other")
LABEL_EVERY_DAYS = 7


@dataclass
class Bar:
    x: float
    width: float
    title: str
    label: str = ""
    segments: list[dict] = field(default_factory=list)


def builds_chart(days: list[dict]) -> dict:
    """Bars per day, each stacked by outcome, scaled to the busiest day."""
    plot_width = WIDTH - MARGIN_LEFT
    plot_height = HEIGHT - MARGIN_BOTTOM
    busiest = max((sum(day[o] for o in OUTCOMES) for day in days), default=0) or 1
    slot = plot_width / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        total = sum(day[o] for o in OUTCOMES)
        summary = ", ".join(f"{day[o]} {o}" for o in OUTCOMES)
        bar = Bar(
            x=round(MARGIN_LEFT + index * slot + 1, 1),
            width=round(max(slot - 2, 1), 1),
            title=f"{day['day']:%Y-%m-%d}: {total} builds ({summary})",
            label=f"{day['day']:%m-%d}" if index % LABEL_EVERY_DAYS == 0 else "",
        )
        top = plot_height
        for outcome in OUTCOMES:
            height = plot_height * day[outcome] / busiest
            if height:
                top -= height
                bar.segments.append(
                    {"outcome": outcome, "y": round(top, 1), "height": round(height, 1)}
                )
        bars.append(bar)
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "plot_height": plot_height,
        "left": MARGIN_LEFT,
        "busiest": busiest,
        "bars": bars,
        "label_y": HEIGHT - 5,
    }
