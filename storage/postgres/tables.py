"""The tables the worker writes (score rows, status transitions, model versions) and analysts and the HTTP API read,
and the record of who read students' data through the HTTP API and the console, with how long it is kept.

Event times (status_since, last_activity_at, updated_at, as_of, at, created_at) are naive
timestamps in school-local time, exactly as the LMS sends them, so they compare with the
events themselves; only `updated_wall` is server time. The migrations in
storage/postgres/migrations create this schema; a test checks that the two agree.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ColumnClause,
    DateTime,
    Double,
    Index,
    Integer,
    String,
    false,
    func,
    literal_column,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from features.activity_status import FROM_STATUSES, STATUSES

#: score_history stores "no model yet" as NULL; the dedupe key must still treat NULLs as equal.
NO_MODEL_VERSION: ColumnClause[Any] = literal_column("-1")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        int: BigInteger,  # LMS ids; small counters say Integer explicitly
        float: Double,
        datetime: DateTime(timezone=False),
        dict[str, Any]: JSONB(none_as_null=True),
        list[str]: JSONB(none_as_null=True),
        list[dict[str, Any]]: JSONB(none_as_null=True),
    }


class StudentCurrent(Base):
    """The newest score row of each enrolment (a student's flow of a course); never moves back in
    event time."""

    __tablename__ = "students_current"
    __table_args__ = (
        CheckConstraint(_in("status", STATUSES), name="ck_students_current_status"),
        Index("ix_students_current_course_status", "course_id", "status"),
    )

    user_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    enrolment: Mapped[str] = mapped_column(String(64), primary_key=True, server_default="")
    course_id: Mapped[int | None]
    flow_num: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    status_since: Mapped[datetime | None]
    last_activity_at: Mapped[datetime | None]
    days_inactive: Mapped[float | None]
    progress_pred: Mapped[float | None]
    p_dropout: Mapped[float | None]
    p_success: Mapped[float | None]
    model_version: Mapped[int | None] = mapped_column(Integer)
    features: Mapped[dict[str, Any] | None]
    factors: Mapped[list[dict[str, Any]] | None]  # the model's reasons (online_models.explain)
    basis: Mapped[dict[str, Any] | None]  # what answered each score (streams.contract.outputs.Basis)
    updated_at: Mapped[datetime]
    updated_wall: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ScoreHistory(Base):
    """Every score the worker produced, for calibration and "how did this student drift" questions."""

    __tablename__ = "score_history"
    __table_args__ = (
        CheckConstraint(_in("status", STATUSES), name="ck_score_history_status"),
        Index("uq_score_history_key", "user_id", "enrolment", "as_of",
              func.coalesce(literal_column("model_version"), NO_MODEL_VERSION), unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int]
    enrolment: Mapped[str] = mapped_column(String(64), server_default="")
    course_id: Mapped[int | None]
    as_of: Mapped[datetime]
    progress_pred: Mapped[float | None]
    p_dropout: Mapped[float | None]
    p_success: Mapped[float | None]
    model_version: Mapped[int | None] = mapped_column(Integer)
    basis: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(16))


class StatusTransition(Base):
    """One alert: an enrolment's status change, with where in the course the student stopped
    (the course position of their last activity) for a move into dozing or asleep."""

    __tablename__ = "status_transitions"
    __table_args__ = (
        CheckConstraint(_in("from_status", FROM_STATUSES), name="ck_status_transitions_from_status"),
        CheckConstraint(_in("to_status", STATUSES), name="ck_status_transitions_to_status"),
        Index("ix_status_transitions_course_to_status", "course_id", "to_status"),
        Index("ix_status_transitions_user_at", "user_id", "at"),
    )

    alert_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[int]
    enrolment: Mapped[str] = mapped_column(String(64), server_default="")
    course_id: Mapped[int | None]
    flow_num: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), server_default="status_change")
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    days_inactive: Mapped[float | None]
    last_activity_at: Mapped[datetime | None]
    course_week: Mapped[int | None] = mapped_column(Integer)
    module: Mapped[int | None] = mapped_column(Integer)
    theme_id: Mapped[int | None]
    theme: Mapped[str | None] = mapped_column(String(500))
    task_id: Mapped[int | None]
    task_name: Mapped[str | None] = mapped_column(String(500))
    activity_id: Mapped[int | None]
    next_task_id: Mapped[int | None]
    next_due_at: Mapped[datetime | None]
    progress_pred: Mapped[float | None]
    p_dropout: Mapped[float | None]
    p_success: Mapped[float | None]
    model_version: Mapped[int | None] = mapped_column(Integer)
    reasons: Mapped[list[str] | None]
    factors: Mapped[list[dict[str, Any]] | None]
    basis: Mapped[dict[str, Any] | None]
    #: the enrolment is in the notification holdout: recorded, not delivered (`scorer uplift` compares)
    held_out: Mapped[bool] = mapped_column(Boolean, server_default=false())


class ModelVersion(Base):
    """What each published model version was trained on and how well it did."""

    __tablename__ = "model_versions"

    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime | None]
    n_labels: Mapped[int | None]
    metrics: Mapped[dict[str, Any] | None]
    params: Mapped[dict[str, Any] | None]
    #: course week ("0".."20", the last pooling later weeks) -> that week's prequential metrics; NULL
    #: for versions published before they were recorded (migration 0005)
    metrics_by_week: Mapped[dict[str, Any] | None]


class StudentDataRead(Base):
    """Who read which students' data, when, and through which page: one row per answer of the read API or the
    console that carried student data (`storage.postgres.data_reads`), written before the answer is sent."""

    __tablename__ = "student_data_reads"
    __table_args__ = (
        Index("ix_student_data_reads_user_ids", "user_ids", postgresql_using="gin"),
        Index("ix_student_data_reads_read_at", "read_at"),
        # no RETURNING of the new id: the workers' role may only INSERT here (storage.postgres.privileges), and
        # RETURNING would need SELECT, a read of who read what
        {"implicit_returning": False},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    #: a person's name from SCORER_API_TOKENS_FILE, or which shared token (streams.tokens.Reader)
    reader: Mapped[str] = mapped_column(String(200))
    door: Mapped[str] = mapped_column(String(16))  # read_api, console
    page: Mapped[str] = mapped_column(String(32))
    course_id: Mapped[int | None]
    #: the students whose rows the answer carried (`scorer forget` takes a student out)
    user_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))


class ReadRecordPolicy(Base):
    """How long the record of reads is kept: one row, which only the schema's owner writes (`scorer migrate`, from
    SCORER_READ_RECORDS_DAYS). A trigger of migration 0008 refuses any role, whatever its grants, to delete a record
    younger than that or to change one except by taking students out, so the credentials that prune and erase
    cannot hide who read what."""

    __tablename__ = "read_record_policy"
    __table_args__ = (CheckConstraint("one_row", name="read_record_policy_one_row"),
                      CheckConstraint("keep_days >= 0", name="read_record_policy_keep_days"))

    one_row: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=true())
    #: days a record is kept; 0: for ever (no record may be deleted)
    keep_days: Mapped[float] = mapped_column(Double, server_default="0")
