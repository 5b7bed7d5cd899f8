from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from coaching.imports import FORMATS, ImportFileError, ImportReport, events_import, format_for, lines_count
from coaching.models import Gym
from coaching.words import count_words
from config.process import collector_tune

REPORT_SUFFIX = ".errors.txt"
# The rest of a long list of bad lines is in the report file, not on the screen.
SHOWN_BAD_LINES = 100

NO_GYM = 'No gym named "{name}". Create it first with: python manage.py creategym "{name}"'
CANNOT_READ = "Cannot read {path}: {reason}"
SUMMARY = "Imported {file}: {created}, {repeated} already there, {bad} skipped."


def report_path(path: Path) -> Path:
    """Where the bad lines of importing ``path`` are written: beside it, ``FILE.errors.txt``."""
    return path.with_name(path.name + REPORT_SUFFIX)


class Command(BaseCommand):
    help = (
        "Import a history of events for a gym from a CSV or JSON Lines file, with the fields and "
        "validation of POST /api/v1/events/. Idempotent by external_id: lines imported before are "
        "repeats and store nothing; a known external_id with different content is a bad line. Bad "
        "lines are skipped, the others imported; each bad line is listed at the end with its line "
        f"number and reason, and written to FILE{REPORT_SUFFIX} beside FILE (removed when a later "
        "run finds no bad line). Exit status: 0 when the file was read to the end, bad lines or not "
        "(see the report); 1 when nothing was imported because the file cannot be read, its CSV "
        "header is unusable or the gym does not exist."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The file: .csv, or .jsonl/.ndjson/.json (one event object per line).")
        parser.add_argument("--gym", required=True, help="The gym's name (as in creategym).")
        parser.add_argument(
            "--format", choices=FORMATS, help="csv or jsonl, when the file's extension does not say which."
        )

    def handle(self, *args: Any, file: str, gym: str, format: str | None, **options: Any) -> None:
        collector_tune()
        gym_obj = Gym.objects.filter(name=gym).first()
        if gym_obj is None:
            raise CommandError(NO_GYM.format(name=gym))
        path = Path(file)
        try:
            format = format or format_for(path.name)
            with path.open("rb") as stream:
                total = lines_count(stream)
                quiet = options["verbosity"] < 1 or None  # None: a bar on a terminal only, never into a log
                with tqdm(total=total, unit="line", file=self.stderr._out, disable=quiet) as bar:
                    report = events_import(
                        gym=gym_obj, lines=stream, format=format, progress=lambda done: bar.update(done - bar.n)
                    )
        except ImportFileError as exc:
            raise CommandError(f"{path}: {exc} Nothing was imported.") from None
        except OSError as exc:
            raise CommandError(CANNOT_READ.format(path=path, reason=exc.strerror or exc)) from None
        self._report(report, path)

    def _report(self, report: ImportReport, path: Path) -> None:
        for bad in report.bad[:SHOWN_BAD_LINES]:
            self.stdout.write(f"line {bad.line}: {bad.reason}")
        errors_file = report_path(path)
        if report.bad_count:
            try:
                with errors_file.open("w", encoding="utf-8") as out:
                    out.writelines(f"line {bad.line}: {bad.reason}\n" for bad in report.bad)
                    if report.bad_count > len(report.bad):
                        out.write(f"... and {report.bad_count - len(report.bad)} more bad lines, not listed.\n")
            except OSError as exc:
                self.stderr.write(f"Could not write the list of bad lines to {errors_file}: {exc.strerror or exc}")
            else:
                more = f" (the first {SHOWN_BAD_LINES} above)" if report.bad_count > SHOWN_BAD_LINES else ""
                self.stdout.write(f"Bad lines listed in {errors_file}{more}.")
        else:
            errors_file.unlink(missing_ok=True)  # it described an earlier run
        self.stdout.write(
            SUMMARY.format(
                file=path.name,
                created=count_words(report.created, "new event"),
                repeated=report.repeated,
                bad=count_words(report.bad_count, "bad line"),
            )
        )
