"""The record of who read students' data may only grow, lose students, and lose records past its period.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

The data-protection role needs UPDATE on `student_data_reads` (`scorer forget` takes a student out of each
record) and DELETE (`scorer prune` drops records past SCORER_READ_RECORDS_DAYS), and so could rewrite or delete
any record of who read what. Triggers now refuse every role (the table's owner may disable them) an UPDATE
that does more than take students out of a record's list, a DELETE of a record younger than
`read_record_policy.keep_days` (0, for ever, until `scorer migrate` sets it), and a TRUNCATE: SQLSTATE 42501,
insufficient_privilege, as a missing grant is. The data-protection role is granted SELECT on the policy
(`storage.postgres.privileges`: the trigger reads it as the role that fires it); no role but the owner may write it.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

GUARD = """
CREATE FUNCTION student_data_reads_guard() RETURNS trigger LANGUAGE plpgsql AS $guard$
DECLARE
    keep double precision;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'the record of who read students'' data may not be emptied (scorer prune drops what is past '
                        'its period)' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF (NEW.id, NEW.read_at, NEW.reader, NEW.door, NEW.page, NEW.course_id)
               IS DISTINCT FROM (OLD.id, OLD.read_at, OLD.reader, OLD.door, OLD.page, OLD.course_id)
           OR NOT (NEW.user_ids <@ OLD.user_ids) THEN
            RAISE EXCEPTION 'a record of who read students'' data may only lose students (scorer forget)'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    SELECT keep_days INTO keep FROM read_record_policy;
    IF coalesce(keep, 0) <= 0 OR OLD.read_at >= now() - keep * interval '1 day' THEN
        RAISE EXCEPTION 'the record of who read students'' data keeps this one (read at %): records are kept % days '
                        '(0: for ever), as scorer migrate set from SCORER_READ_RECORDS_DAYS',
                        OLD.read_at, coalesce(keep, 0)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END
$guard$
"""


def upgrade() -> None:
    op.create_table(
        "read_record_policy",
        sa.Column("one_row", sa.Boolean(), primary_key=True, server_default=sa.true()),
        sa.Column("keep_days", sa.Double(), nullable=False, server_default="0"),
        sa.CheckConstraint("one_row", name="read_record_policy_one_row"),
        sa.CheckConstraint("keep_days >= 0", name="read_record_policy_keep_days"),
    )
    op.execute("INSERT INTO read_record_policy DEFAULT VALUES")
    op.execute(GUARD)
    op.execute("CREATE TRIGGER student_data_reads_guard BEFORE UPDATE OR DELETE ON student_data_reads "
               "FOR EACH ROW EXECUTE FUNCTION student_data_reads_guard()")
    op.execute("CREATE TRIGGER student_data_reads_not_emptied BEFORE TRUNCATE ON student_data_reads "
               "FOR EACH STATEMENT EXECUTE FUNCTION student_data_reads_guard()")


def downgrade() -> None:
    op.execute("DROP TRIGGER student_data_reads_not_emptied ON student_data_reads")
    op.execute("DROP TRIGGER student_data_reads_guard ON student_data_reads")
    op.execute("DROP FUNCTION student_data_reads_guard()")
    op.drop_table("read_record_policy")
