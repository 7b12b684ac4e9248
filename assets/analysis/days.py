"""The configured days (``'MM-DD'``) as labels of column and property names and as (month, day)."""


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def day_label(day: str) -> str:
    """``'03-21'`` -> ``'mar21'`` (used in column and property names)."""
    m, d = (int(p) for p in day.split("-"))
    return f"{_MONTHS[m - 1]}{d:02d}"


def date_label(date) -> str:
    """A ``datetime.date`` -> ``'mar21'``."""
    return f"{_MONTHS[date.month - 1]}{date.day:02d}"


def month_day(day: str) -> tuple[int, int]:
    """``'03-21'`` -> ``(3, 21)``."""
    m, d = (int(p) for p in day.split("-"))
    return m, d
