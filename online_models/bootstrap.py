"""`scorer bootstrap DIR`: a new school's models learn its history before it goes live.

A new school starts at model version 0 (the label-free priors) and learns nothing until its first
module ends. Its LMS export (earlier flows' events and outcomes: the seed's CSV files, `scorer
import`) holds the labels a live trainer would have learned, had the system been running. This
learns each labelled enrolment as the live trainer does: `ScoringModels.learn_weeks` on its weekly
snapshots taken while its outcome was still unknown, with its label, in the order the live trainer
learns them (a flow's outcomes together: `in_learning_order`; snapshots and labels are the offline
evaluation's, `load_students`), and publishes the result as a new version
that the workers hot-swap to.

Fairness: a warm start may only use data from before the predictions it serves, so `until` keeps
only outcomes that arrived before it (default: everything in the export).

The live trainer's bookkeeping (online_models.trainer): the bootstrap holds the trainer's lock while it
runs, so no trainer publishes under it or, holding a model without it, over it (with workers or `scorer
train` running the lock is taken: stop them, or bootstrap before going live). Its labels never pass
through the trainer's queue or its trained set, so if the same export is later replayed live, those
outcomes arrive as labels the live trainer has not seen, and it learns them a second time. With
`mark_trained` the bootstrap adds their enrolments (streams.core.documents.learner_key) to the trained set in
its publishing transaction, and the live trainer skips them (the weekly snapshots the workers keep for
them then wait for their expiry, weekly_features.TTL_SECONDS, instead of being deleted when learned).
A fresh bootstrap (not `on_top`) over a version that learned live labels would lose them for good (they
are marked trained, their snapshots deleted): refused unless `replace`.
"""
from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from features import DEFAULT_THRESHOLDS
from features.eventtime import format_ts
from online_models.evaluation.online_replay import running_weeks
from online_models.evaluation.students import Student, flows_done, in_learning_order, load_students
from online_models.families import DEFAULT_FAMILY
from online_models.labels import Label
from online_models.learners import ScoringModels
from online_models.registry import Metadata, ModelRegistry
from online_models.scoring import OnlineScoring
from online_models.trainer import LockHeldElsewhere, Trainer
from storage.postgres.sink import PostgresSink
from streams.contract.outputs import enrolment_key
from streams.core.documents import learner_key
from streams.settings import Settings

#: load_students caps weeks at this or the course's own, whichever is less: the worker keeps every
#: week of the course's schedule, so no cap.
ALL_WEEKS = sys.maxsize
#: Renew the trainer's lock this often while learning (it lapses after Trainer's lock_ttl_ms, 30 s).
RENEW_EVERY_S = 5.0
#: A label's class, as the summary counts them: success, dropout, or neither (failed but stayed).
CLASSES = ("success", "dropout", "neither")


class Refused(RuntimeError):
    """The bootstrap would publish something wrong or lose labels: nothing was published."""


def label_class(label: Label) -> str:
    return "success" if label.success else "dropout" if label.dropout else "neither"


@dataclass
class Learned:
    """What `learn_history` took from an export."""

    enrolments: int = 0  # learned: outcome before `until`, at least one week before it
    weeks: int = 0  # (course week's snapshot, label) examples learned
    labels: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASSES, 0))  # enrolments by class
    no_weeks: int = 0  # outcome before `until` but before the first week ended: nothing to learn
    after_until: int = 0  # outcome at or after `until`: left out
    unlabelled: int = 0  # no outcome in the export
    learners: list[str] = field(default_factory=list)  # learner keys of every enrolment taken (for mark_trained)
    surrogate_rows: int = 0  # earlier weeks of the enrolments still running that the surrogate was fitted on


def learn_history(models: ScoringModels, students: Iterable[Student], until: float | None = None,
                  tick: Callable[[], None] = lambda: None) -> Learned:
    """Learn every enrolment whose outcome arrived before `until` into `models`, in the order the live
    trainer would have, then refit what waits for a refit (ScoringModels.settle): what is
    published holds all of it. `tick` runs after each (the caller renews its lock there). The surrogate
    is fitted on the others' weeks before `until`: what the live trainer's store would hold then."""
    students = list(students)
    learned = Learned(unlabelled=sum(s.label is None or s.label_ts is None for s in students))
    # a flow is complete by `until` only if its last outcome came before it
    done = {flow: at for flow, at in flows_done(students).items() if until is None or at < until}
    taken: set[int] = set()
    for student in in_learning_order(students, done):
        assert student.label is not None and student.label_ts is not None  # in_learning_order keeps labelled ones
        if until is not None and student.label_ts >= until:
            learned.after_until += 1
            continue
        taken.add(student.id)
        learned.learners.append(learner_key(student.user_id, enrolment_key(student.course_id, student.flow)))
        weeks = student.open_weeks()
        if not weeks:
            learned.no_weeks += 1
            continue
        models.learn_weeks(weeks, student.label, student.course_id, student.flow)
        learned.enrolments += 1
        learned.weeks += len(weeks)
        learned.labels[label_class(student.label)] += 1
        tick()
    models.settle()
    surrogate = models.refit_surrogate(running_weeks(students, taken, math.inf if until is None else until))
    learned.surrogate_rows = 0 if surrogate is None else surrogate.rows
    return learned


def _has_live_labels(registry: ModelRegistry, version: int) -> bool:
    """Might `version` contain labels the live trainer learned? Only versions 0 and bootstraps that
    started fresh are known not to."""
    if version == 0:
        return False
    origin = (registry.metadata(version) or {}).get("origin")
    return origin is None or bool(origin.get("live_labels", True))


def _every(seconds: float, action: Callable[[], None]) -> Callable[[], None]:
    last = time.monotonic()

    def maybe() -> None:
        nonlocal last
        if time.monotonic() - last >= seconds:
            last = time.monotonic()
            action()

    return maybe


def _starting_point(registry: ModelRegistry | None, family: str | None, on_top: bool,
                    replace: bool) -> tuple[ScoringModels, int, bool]:
    """(the models to learn into, the latest version, whether they hold live labels); Refused when
    a fresh model would drop live labels or `family` contradicts the version learned on."""
    latest = 0 if registry is None else registry.latest_version()
    live = registry is not None and _has_live_labels(registry, latest)
    if not on_top:
        if live and not replace:
            raise Refused(f"the latest version {latest} has learned live labels, which a fresh model would lose "
                          "for good: use --on-top to keep them, or --replace to start over anyway")
        return ScoringModels(family=family or DEFAULT_FAMILY), latest, False
    if registry is None:
        raise Refused("--on-top needs the workers' Redis, to read the latest version")
    models = registry.load(latest) if latest else ScoringModels(family=family or DEFAULT_FAMILY)
    if family is not None and family != models.family:
        raise Refused(f"--family {family}: the latest version {latest} is {models.family}")
    return models, latest, live


def bootstrap(directory: Path, registry: ModelRegistry | None = None, trainer: Trainer | None = None, *,
              family: str | None = None, on_top: bool = False, until: float | None = None, dry_run: bool = False,
              mark_trained: bool = False, replace: bool = False,
              asleep_days: float = DEFAULT_THRESHOLDS.asleep_days) -> dict[str, Any]:
    """Learn the export at `directory` (see the module docstring) and publish it through `registry`
    holding `trainer`'s lock (both needed unless `dry_run`; `on_top` needs `registry`). Returns the
    summary; raises Refused, or LockHeldElsewhere while a trainer runs."""
    began = time.perf_counter()
    lock = None if dry_run else trainer
    if not dry_run and (registry is None or lock is None):
        raise Refused("publishing needs the workers' Redis (a registry and the trainer's lock)")
    if lock is not None:
        lock.ensure_lock()
    try:
        models, latest, live = _starting_point(None if dry_run and not on_top else registry, family, on_top, replace)
        students = load_students(Path(directory), ALL_WEEKS, asleep_days)
        loaded = time.perf_counter()
        learned = learn_history(models, students, until,
                                tick=(lambda: None) if lock is None else _every(RENEW_EVERY_S, lock.ensure_lock))
        origin: Metadata = {
            "kind": "bootstrap", "directory": str(Path(directory).resolve()),
            "until": None if until is None else format_ts(until), "on_top_of": latest if on_top else None,
            "enrolments": learned.enrolments, "marked_trained": mark_trained, "live_labels": live,
        }
        version = None
        if registry is not None and lock is not None:
            version = _publish(registry, lock, models, latest, origin, learned.learners if mark_trained else [])
    finally:
        if lock is not None:
            lock.release()
    return {
        **origin, "family": models.family, "labels": learned.labels, "weeks": learned.weeks,
        "n_labels": models.n_labels, "left_out": {"after_until": learned.after_until,
                                                  "unlabelled": learned.unlabelled, "no_weeks": learned.no_weeks},
        "version": version, "dry_run": dry_run, "marked": len(learned.learners) if version and mark_trained else 0,
        "surrogate_rows": learned.surrogate_rows,
        "seconds": round(time.perf_counter() - began, 2), "seconds_loading": round(loaded - began, 2),
        "metrics": models.metrics(),
    }


def _publish(registry: ModelRegistry, trainer: Trainer, models: ScoringModels, based_on: int, origin: Metadata,
             mark: list[str]) -> int:
    """Publish, with `mark` added to the trainer's trained set in the same transaction, if no other
    version appeared while learning."""
    trainer.ensure_lock()
    if registry.latest_version() != based_on:
        raise Refused(f"version {registry.latest_version()} was published while bootstrapping on {based_on}: "
                      "nothing published")
    return registry.publish(models, also=lambda pipe: trainer.mark_trained(pipe, mark), origin=origin)


def _text(summary: dict[str, Any]) -> str:
    labels, left = summary["labels"], summary["left_out"]
    published = ("dry run: nothing published" if summary["dry_run"] else
                 f"published version {summary['version']}" + (f" on top of version {summary['on_top_of']}"
                                                             if summary["on_top_of"] else ""))
    metrics = ", ".join(f"{name} {'-' if value is None else round(value, 3)}"
                        for name, value in summary["metrics"].items())
    return "\n".join([
        f"learned {summary['enrolments']} enrolments ({', '.join(f'{k} {v}' for k, v in labels.items())}), "
        f"{summary['weeks']} weeks, from {summary['directory']}"
        + (f", outcomes before {summary['until']}" if summary["until"] else ""),
        f"left out: {left['after_until']} with a later outcome, {left['unlabelled']} without one, "
        f"{left['no_weeks']} whose outcome came before their first week ended",
        f"{published} ({summary['family']}, {summary['n_labels']} labels"
        + (f", {summary['marked']} enrolments marked trained" if summary["marked"] else "")
        + f") in {summary['seconds']} s ({summary['seconds_loading']} s reading the export)",
        f"prequential metrics: {metrics}",
        "label-free guess: " + (f"the surrogate, fitted on {summary['surrogate_rows']} earlier weeks of the "
                                "enrolments still running" if summary["surrogate_rows"] else
                                "the priors (too few weeks of enrolments still running for the surrogate)"),
    ])


def run(settings: Settings, directory: Path, *, as_json: bool = False, **options: Any) -> int:
    """`scorer bootstrap`: connect to the workers' Redis (and Postgres, when set, for the version's
    row), bootstrap, print the summary. Not to embedded servers: a version published there dies with
    this process."""
    needs_redis = not options.get("dry_run") or options.get("on_top")
    if needs_redis and not settings.redis_url:
        print("scorer bootstrap needs SCORER_REDIS_URL, the workers' Redis (an embedded one, and the version "
              "published into it, would die with this process); --dry-run learns without publishing",
              file=sys.stderr)
        return 2
    sink = None
    if settings.database_url and not options.get("dry_run"):
        sink = asyncio.run(PostgresSink.open(settings.database_url))
    scoring = None
    if needs_redis:
        scoring = OnlineScoring.connect(settings.redis_url, settings.models_key_prefix, settings.asleep_days,
                                        on_publish=None if sink is None else sink.write_model_version)
    try:
        registry, trainer = (None, None) if scoring is None else (scoring.registry, scoring.trainer)
        summary = bootstrap(directory, registry, trainer, asleep_days=settings.asleep_days, **options)
    except (Refused, LockHeldElsewhere) as error:
        reason = (f"a trainer holds the lock ({error}): stop the workers and `scorer train`, or bootstrap "
                  "before going live" if isinstance(error, LockHeldElsewhere) else str(error))
        print(f"scorer bootstrap: {reason}", file=sys.stderr)
        return 2
    finally:
        if scoring is not None:
            asyncio.run(scoring.close())
        if sink is not None:
            asyncio.run(sink.close())
    print(json.dumps(summary, ensure_ascii=False, indent=2) if as_json else _text(summary))
    return 0
