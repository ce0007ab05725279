"""`scorer dataset`: a two-student export written by hand, its daily rows worked out by hand,
compared row by row; the file formats; the seed's column order."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from online_models.evaluation.dataset import (
    FEATURE_COLUMNS,
    LABEL_COLUMNS,
    SEED_COLUMNS,
    DatasetError,
    build_dataset,
    read_dataset,
    run,
    write_dataset,
)

FILES = {
    "schedule.csv": """course_id,type,taskID,activivtyID,activityType,isAttestation,visibility,flows,dateShown
9,занятие,1,1,,0,{},1,2023-12-01 11:00:00
9,активность,1,11,exercise,0,{},1,2023-12-01 11:00:00
9,активность,1,12,slide,0,{},1,2023-12-01 11:00:00
9,занятие,2,2,,1,{},1,2023-12-08 11:00:00
9,активность,2,21,exercise,1,{},1,2023-12-08 11:00:00
""",
    "activities_guide.csv": """courseID,Курс,Провайдер,Модуль,themeID,Тема,taskID,Занятие,taskPosition,\
Признак Аттестации,activityID,Тип Активности,Активность,Признак Обязательного,Видимость
9,Курс,1T,2,1,Тема,1,Занятие 1,1,0,11,exercise,Задание,1,{}
9,Курс,1T,2,1,Тема,1,Занятие 1,1,0,12,slide,Слайд,0,{}
9,Курс,1T,2,1,Тема,2,Аттестация,2,1,21,exercise,Экзамен,1,{}
""",
    "users.csv": """unti_id,userID,course_id,flow_num,tgBot,M2_progress,M2_attestation,M2_attestation_date
9001,501,9,1.00,Подключен,100,80,2023-12-10 12:30:00
9002,502,9,1.00,—,Нет данных,Не сдана,
""",
    "users_age_timezone.csv": "userID,timeZone,age\n501,+05:00,30\n502,+03:00,41\n",
    "users_logs.csv": """user_id,created_a,event,comment
501,28.11.2023 10:00,tags-changed,"Были хештеги: , стали: #онлайн #M1-оплачен"
""",
    "authorization.csv": """user_id,created_at,user_agent,window size
501,2023-12-02 10:00:00,UA,1872x932
501,2023-12-09 19:00:00,UA,1872x932
501,2023-12-10 12:00:00,UA,1872x932
""",
    "activity_history_viewed.csv": """user_id,created_at,page_type,page_id,module,attestation,activity_type
501,2023-12-02 10:05:00,занятие,1,2,0,
501,2023-12-02 10:10:00,активность,11,2,0,exercise
501,2023-12-03 09:00:00,активность,11,2,0,exercise
501,2023-12-10 12:05:00,занятие,2,2,1,
""",
    "exercise_results.csv": """module,activityID,userId,createdAt,result,success
2,11,501,2023-12-02 10:20:00,40,0
2,11,501,2023-12-09 20:00:00,90,1
2,21,501,2023-12-10 12:20:00,80,1
""",
    "webinars_logs.csv": """userId,dateTime,eventName,webinarId,формат подключения,вводный вебинар,module
501,03.12.2023 19:00,Подключение,77,онлайн,1,2
501,03.12.2023 20:30,Отключение,77,онлайн,1,2
""",
}
D = 86_400
REST = 46_799 / D  # 11:00:00 -> 23:59:59: what a row opened (or due) at 11:00 adds on its own day
DAYS = pd.date_range("2023-12-01", "2023-12-15", freq="D")  # lesson 1 opens 12-01; the last task is due 12-15


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("hand")
    for name, text in FILES.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def frame(export_dir) -> pd.DataFrame:
    return build_dataset(export_dir)


def rows_of(frame: pd.DataFrame, user_id: int) -> pd.DataFrame:
    return frame[frame["user_id"] == user_id].set_index("cur_date")


def idle_row(day: int) -> dict[str, float]:
    """Student 502 does nothing: everything is 0 but the schedule counts and the accruing delays.
    Day 0 is 12-01; lesson 1 and exercise 11 open 12-01 11:00, lesson 2 and exercise 21 12-08 11:00;
    11 is due 12-08 11:00, 21 (the last task) a week after it opened, 12-15 11:00."""
    row = dict.fromkeys(FEATURE_COLUMNS, 0.0)
    row.update(payment=0, time_zone=3, age=41, tg_bot=0)
    second = day >= 7
    row.update(sum_schedule_activities=5 if second else 3, sum_required_activity=2 if second else 1,
               sum_attestation_activity=2 if second else 0)
    row["view_delay_sum"] = day + REST + (day - 7 + REST if second else 0)  # lessons 1 and 2, never viewed
    late = [day - 7 + REST] if second else []  # exercise 11 past due, never attempted
    late += [REST] if day == 14 else []  # exercise 21 falls due on the last day
    row.update(exercise_delay_sum=sum(late), result_delay_sum=sum(late),
               exercise_delay_first=sum(late) / len(late) if late else 0.0,
               result_delay_mean=sum(late) / len(late) if late else 0.0,
               m2_delay=REST if day == 14 else 0.0)  # the attestation (21) is late from 12-15 11:00
    return row


@pytest.mark.heavy
def test_columns_are_the_seeds_39_in_order(frame) -> None:
    assert tuple(frame.columns) == SEED_COLUMNS and len(SEED_COLUMNS) == 39
    assert SEED_COLUMNS[0] == "user_id" and SEED_COLUMNS[-1] == "cur_date"
    assert len(frame) == 2 * len(DAYS) and not frame.isna().any().any()  # no value is ever missing


def test_idle_student_row_by_row(frame) -> None:
    rows = rows_of(frame, 502)
    assert list(rows.index) == list(DAYS)
    for day, (date, row) in enumerate(rows.iterrows()):
        assert (row["unti_id"], row["course_id"], row["flow_num"]) == (9002, 9, 1)
        assert (row["m2_progress"], row["m2_attestation"], row["module"]) == (-1, -1, 2)  # 'Нет данных', 'Не сдана'
        want = idle_row(day)
        got = {name: row[name] for name in FEATURE_COLUMNS}
        assert got == pytest.approx(want, abs=1e-9), date


def active_row(day: int) -> dict[str, float]:
    """Student 501, worked out by hand (times as seconds after the row's opening or due time)."""
    row = idle_row(day) | {"payment": 1, "time_zone": 5, "age": 30, "tg_bot": 1}
    row.update(view_delay_sum=REST, exercise_delay_sum=0.0, exercise_delay_first=0.0,
               result_delay_sum=0.0, result_delay_mean=0.0, m2_delay=0.0)
    if day == 0:
        return row
    first_11 = -(6 * D + 2400) / D  # the 12-02 10:20 attempt vs the 12-08 11:00 due time
    row.update(sum_auth=1, sum_activity_viewed=2, sum_required_activity_viewed=1,
               view_delay_first=(83_100 + 83_400) / 2 / D,  # lesson 1 after 23h05, exercise 11 after 23h10
               view_delay_sum=83_100 / D, exercise_delay_sum=first_11, exercise_delay_first=first_11,
               sum_exercise_attempts_mean=1, mean_required_result=40, sum_result=40, mean_result=40)
    if day >= 2:  # the second view of 11, and the 1.5-hour webinar
        row.update(sum_activity_viewed=3, sum_required_activity_viewed=2, w_view_hours=1.5, conn=1, online_rate=1)
    if day >= 7:  # lesson 2 opens, unviewed; exercise 11 is due and not passed: its result delay accrues
        row.update(view_delay_sum=(83_100 + (day - 7) * D + 46_799) / D,
                   result_delay_sum=day - 7 + REST, result_delay_mean=day - 7 + REST)
    if day >= 8:  # 12-09: login, 11 passed at 20:00 (1 day 9 h after its due time)
        row.update(sum_auth=2, sum_exercise=1, sum_required_exercises=1, sum_exercise_attempts_mean=2,
                   mean_required_result=90, sum_result=90, mean_result=90, progress=50,
                   result_delay_sum=118_800 / D, result_delay_mean=118_800 / D)
    if day >= 9:  # 12-10: login, lesson 2 viewed after 2 d 1 h 05, the attestation 21 passed at 12:20
        first_21 = -(4 * D + 81_600) / D  # vs its 12-15 11:00 due time
        row.update(sum_auth=3, sum_activity_viewed=4, sum_attestation_activity_viewed=1,
                   view_delay_first=(83_100 + 83_400 + 176_700) / 3 / D, view_delay_sum=(83_100 + 176_700) / D,
                   sum_exercise=2, sum_required_exercises=2, sum_attestation_exercises=1,
                   exercise_delay_sum=first_11 + first_21, exercise_delay_first=(first_11 + first_21) / 2,
                   result_delay_sum=(118_800 - 4 * D - 81_600) / D,
                   result_delay_mean=(118_800 - 4 * D - 81_600) / 2 / D,
                   sum_exercise_attempts_mean=1.5, mean_required_result=85, mean_attestation_result=80,
                   sum_result=170, mean_result=85, progress=100, m2_delay=first_21)  # passed 4.9 days early
    return row


def test_active_student_row_by_row(frame) -> None:
    rows = rows_of(frame, 501)
    assert list(rows.index) == list(DAYS)
    for day, (date, row) in enumerate(rows.iterrows()):
        assert (row["unti_id"], row["m2_progress"], row["m2_attestation"], row["module"]) == (9001, 100, 80, 2)
        got = {name: row[name] for name in FEATURE_COLUMNS}
        assert got == pytest.approx(active_row(day), abs=1e-9), date


def test_labels_are_marked_and_not_features() -> None:
    assert set(LABEL_COLUMNS) == {"m2_progress", "m2_attestation", "module"}
    assert not set(LABEL_COLUMNS) & set(FEATURE_COLUMNS)


def test_csv_round_trip_with_the_seeds_index_column(frame, tmp_path) -> None:
    path = tmp_path / "dataset.csv"
    write_dataset(frame, path)
    header = path.read_text(encoding="utf-8").split("\n", 1)[0].split(",")
    assert header[0] == "" and tuple(header[1:]) == SEED_COLUMNS  # pd.read_csv(..., index_col=0), as the seed says
    back = read_dataset(path)
    pd.testing.assert_frame_equal(back.reset_index(drop=True), frame.reset_index(drop=True), check_dtype=False)


def test_parquet_by_extension(frame, tmp_path) -> None:
    path = tmp_path / "dataset.parquet"
    write_dataset(frame, path)
    pd.testing.assert_frame_equal(read_dataset(path), frame.reset_index(drop=True), check_dtype=False)
    with pytest.raises(DatasetError, match="unknown dataset format"):
        write_dataset(frame, tmp_path / "dataset.xlsx")


@pytest.mark.heavy
def test_worker_processes_give_the_same_frame(export_dir, frame) -> None:
    pd.testing.assert_frame_equal(build_dataset(export_dir, workers=2), frame)


@pytest.mark.heavy
def test_run_writes_and_summarises(export_dir, tmp_path, capsys) -> None:
    out = tmp_path / "sub" / "ds.csv"
    assert run(export_dir, out, days=20) == 0
    assert '"rows": 40' in capsys.readouterr().out  # --days: exactly that many rows per student
    rows = read_dataset(out)
    assert rows.groupby("user_id").size().tolist() == [20, 20]
