"""The admin's one date format ("20 Nov 2026, 07:30"), for what Django formats itself
(date columns, date filters); ``coaching.words`` writes the same by hand."""

DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
MONTH_DAY_FORMAT = "j M"
YEAR_MONTH_FORMAT = "M Y"
