"""The readers against the seed document's own sample rows (tests/fixtures/seed_sample), and
against the ways a real export goes wrong."""
from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from streams.lms import csvfile, readers
from streams.lms.csvfile import ExportFormatError
from streams.lms.readers import SPECS, load_export
from streams.lms.tags import has_payment, is_online, matches_seed_online_filter, tags_after, tags_before
from streams.lms.values import parse_tg_bot, parse_timestamps

SEED = Path(__file__).parents[1] / "fixtures" / "seed_sample"
SWITCH = "Были хештеги: #entry-email #офлайн, стали: #entry-email #онлайн"
STAYED = ("Были хештеги: #мотив #онлайн #M1-завершил #сверка-дат #M1-оплачен #M2-завершил, "
          "стали: #мотив #онлайн #M1-завершил #M1-оплачен #M2-завершил")

#: The "Название" column of each table in the seed, in order.
SEED_COLUMNS = {
    "users_age_timezone.csv": ["user_id", "time_zone", "age"],
    "authorization.csv": ["user_id", "created_at", "user_agent", "window_size"],
    "schedule.csv": ["course_id", "type", "task_id", "activivty_id", "activity_type", "is_attestation", "visibility",
                     "flows", "date_shown"],
    "activity_history_viewed.csv": ["user_id", "created_at", "page_type", "page_id", "module", "attestation",
                                    "activity_type"],
    "webinars_logs.csv": ["user_id", "datetime", "event_name", "webinar_id", "conn_format", "webinar_vvod", "module"],
    "exercise_results.csv": ["module", "activity_id", "user_id", "created_at", "result", "success"],
    "users_logs.csv": ["user_id", "created_at", "event", "comment"],
    "users.csv": ["unti_id", "user_id", "course_id", "flow_num", "tg_bot", "m2_progress", "m2_attestation",
                  "m2_attestation_date"],
    "activities_guide.csv": ["course_id", "course", "provider", "modul", "theme_id", "theme", "task_id", "exercise",
                             "task_position", "att_priznak", "activity_id", "activity_type", "activity",
                             "obyaz_priznak", "visibility"],
}


@pytest.fixture(scope="module")
def seed():
    return load_export(SEED)


@pytest.mark.heavy
def test_every_table_has_the_seed_column_names(seed):
    for file, columns in SEED_COLUMNS.items():
        assert list(seed.table(file).columns) == columns, file


def test_seed_sample_values(seed):
    tz = seed.users_age_timezone
    assert tz["user_id"].tolist() == [982, 2566] and tz["time_zone"].tolist() == ["+03:00", "+03:00"]
    assert tz["age"].tolist() == [16, 16] and str(tz["age"].dtype) == "Int64"

    auth = seed.authorization
    assert auth["created_at"].tolist() == [pd.Timestamp("2022-12-07 17:43:14"), pd.Timestamp("2022-12-07 19:51:34")]
    assert auth["window_size"].tolist() == ["1872x932", "1872x918"]
    assert auth["user_agent"].iloc[0] == "Mozilla/5.0 (Windows"

    plan = seed.schedule
    assert plan["activivty_id"].tolist() == [8719, 8720] and plan["task_id"].tolist() == [81, 81]
    assert plan["date_shown"].iloc[0] == pd.Timestamp("2023-12-05 11:00:00")
    assert plan["type"].iloc[0] == "активность" and plan["visibility"].iloc[0] == "{}" and plan["flows"].iloc[0] == 1

    views = seed.activity_history_viewed
    assert views["page_type"].tolist() == ["занятие", "занятие"] and views["page_id"].tolist() == [3015, 3015]
    assert views["attestation"].tolist() == [1, 1] and views["activity_type"].isna().all()

    web = seed.webinars_logs
    assert web["datetime"].tolist() == [pd.Timestamp("2023-12-23 12:10"), pd.Timestamp("2023-12-23 12:15")]
    assert web["event_name"].tolist() == ["Подключение", "Отключение"]
    assert (web["conn_format"].iloc[0], web["webinar_vvod"].iloc[0], web["webinar_id"].iloc[0]) == ("офлайн", 1, 13378)

    results = seed.exercise_results
    assert results["result"].tolist() == [100, 100] and results["success"].tolist() == [1, 1]
    assert results["created_at"].iloc[1] == pd.Timestamp("2023-12-01 09:18:55")

    logs = seed.users_logs
    assert logs["created_at"].tolist() == [pd.Timestamp("2023-11-14 15:07"), pd.Timestamp("2024-02-19 17:20")]
    assert logs["comment"].tolist() == [SWITCH, STAYED]

    users = seed.users
    assert users["flow_num"].tolist() == [1.0, 1.0] and users["tg_bot"].tolist() == [0, 0]
    assert users["m2_progress"].tolist() == [13, 0]
    assert users["m2_attestation"].isna().all() and users["m2_attestation_date"].isna().all()
    assert users["unti_id"].tolist() == [1051004, 1118021]

    guide = seed.activities_guide
    assert len(guide) == 1
    row = guide.iloc[0]
    ids = (row["course_id"], row["modul"], row["theme_id"], row["task_id"], row["activity_id"])
    assert ids == (3, 2, 13, 81, 14823)
    flags = (row["course"], row["activity_type"], row["obyaz_priznak"], row["att_priznak"])
    assert flags == ("Нейро.PY", "CodeExercise", 0, 0)


def test_the_seed_guide_truncated_row_is_rejected_not_dropped(seed):
    """The document's column C of activities_guide is cut off (no ids): it cannot be used."""
    assert [(r.file, r.line, r.reason) for r in seed.rejected] == [
        ("activities_guide.csv", 3, "missing_value: courseID")]
    assert seed.rejected[0].raw.startswith(",Нейро,")


def test_frames_are_indexed_by_source_line(seed):
    assert seed.users.index.tolist() == [2, 3]


def test_bad_rows_are_rejected_with_reasons(tmp_path):
    path = tmp_path / "exercise_results.csv"
    path.write_text(
        "module,activityID,userId,createdAt,result,success\n"
        "2,13278,72002,2023-12-01 08:53:00,100,1\n"
        "2,13278,abc,2023-12-01 08:53:00,100,1\n"
        "2,13278,72002,2023-13-01 08:53:00,100,1\n"
        "2,13278,72002,2023-12-01 08:53:00,Пропуск,0\n"
        "2,13278,72002\n"
        '2,"13278,72002,2023-12-01 08:53:00,1,0\n'
        "\n"
        "2,13278,72002,2023-12-02T08:53:00+03:00,100,1\n"
        "2,13278,72002,2023-12-01 08:53:00,,1\n"
        "2,13278.5,72002,2023-12-01 08:53:00,100,1\n",
        encoding="utf-8")
    frame, rejected = readers.read_file(path, SPECS["exercise_results.csv"])
    assert frame.index.tolist() == [2, 5]
    assert frame["result"].isna().tolist() == [False, True]  # 'Пропуск' = skipped = no result
    reasons = {r.line: r.reason for r in rejected}
    assert reasons == {
        3: "bad_int: userId=abc",
        4: "bad_ts: createdAt=2023-13-01 08:53:00",
        6: "field_count: expected 6 fields, got 3",
        7: "bad_quoting: unexpected end of data",
        9: "bad_ts: createdAt=2023-12-02T08:53:00+03:00",
        10: "missing_value: result",
        11: "bad_int: activityID=13278.5",
    }
    assert next(r for r in rejected if r.line == 3).raw == "2,13278,abc,2023-12-01 08:53:00,100,1"


def test_a_file_read_in_chunks_is_the_file_read_at_once(tmp_path, monkeypatch):
    """Large exports are split a chunk of rows at a time; the chunks' frames and rejects add up to
    the whole file's, line numbers and all, whatever the chunk size."""
    path = tmp_path / "exercise_results.csv"
    rows = [f"2,{13278 + n},7200{n % 3},2023-12-0{1 + n % 9} 08:53:00,{n * 7 % 101},{n % 2}" for n in range(11)]
    rows[3], rows[6], rows[7] = "2,13278,abc,2023-12-01 08:53:00,100,1", "2,1", ""
    path.write_text("module,activityID,userId,createdAt,result,success\r\n" + "\r\n".join(rows) + "\r\n",
                    encoding="utf-8-sig")
    whole = readers.read_file(path)
    for size in (1, 2, 3, 50):
        monkeypatch.setattr(readers, "read_raw", partial(csvfile.read_raw, chunk_rows=size))
        chunked = readers.read_file(path)
        pd.testing.assert_frame_equal(chunked.frame, whole.frame)
        assert chunked.rejected == whole.rejected
    assert whole.frame.index.tolist() == [2, 3, 4, 6, 7, 10, 11, 12]
    assert [(r.line, r.reason) for r in whole.rejected] == [
        (5, "bad_int: userId=abc"), (8, "field_count: expected 6 fields, got 2")]


def test_semicolons_and_cp1251_from_russian_excel(tmp_path):
    path = tmp_path / "users.csv"
    text = ("unti_id;userID;course_id;flow_num;tgBot;M2_progress;M2_attestation;M2_attestation_date\n"
            "1;982;3;1,00;Остановлен;Нет данных;75;2024-02-01 10:00:00\n"
            "2;983;3;2.00;Подключен;40;Не сдана;\n")
    path.write_bytes(text.encode("cp1251"))
    frame, rejected = readers.read_file(path, SPECS["users.csv"])
    assert rejected == []
    assert frame["flow_num"].tolist() == [1.0, 2.0] and frame["tg_bot"].tolist() == [2, 1]
    assert frame["m2_progress"].isna().tolist() == [True, False]
    assert frame["m2_attestation"].tolist()[0] == 75 and frame["m2_attestation"].isna().tolist() == [False, True]
    assert frame["m2_attestation_date"].iloc[0] == pd.Timestamp("2024-02-01 10:00:00")


def test_missing_header_column_is_a_format_error(tmp_path):
    (tmp_path / "users_logs.csv").write_text("user_id,created_at,event,comment\n1,14.11.2023 15:07,x,y\n")
    with pytest.raises(ExportFormatError, match="created_a"):
        readers.read_file(tmp_path / "users_logs.csv", SPECS["users_logs.csv"])


@pytest.mark.heavy
def test_missing_optional_file_is_an_empty_table(tmp_path):
    for file in ("users.csv", "schedule.csv"):
        shutil.copy(SEED / file, tmp_path / file)
    export = load_export(tmp_path)
    assert export.webinars_logs.empty and list(export.webinars_logs.columns) == SEED_COLUMNS["webinars_logs.csv"]
    assert str(export.webinars_logs["datetime"].dtype).startswith("datetime64")
    assert str(export.webinars_logs["user_id"].dtype) == "Int64"
    (tmp_path / "users.csv").unlink()
    with pytest.raises(ExportFormatError, match=r"it has no users\.csv"):
        load_export(tmp_path)
    with pytest.raises(ExportFormatError, match="no such directory"):
        load_export(tmp_path / "elsewhere")


def test_raw_headers_are_the_seed_csv_headers():
    headers = {file: [c.raw for c in spec.columns] for file, spec in SPECS.items()}
    assert headers["schedule.csv"][3] == "activivtyID"
    assert headers["users_logs.csv"][1] == "created_a"
    assert headers["authorization.csv"][3] == "window size"
    assert headers["webinars_logs.csv"][4:6] == ["формат подключения", "вводный вебинар"]


def test_tg_bot_codes():
    raw = pd.Series(["—", "", "-", "1", "2", "0", "Подключен", "остановлен", "Бот остановлен"], dtype="str")
    assert parse_tg_bot(raw).tolist() == [0, 0, 0, 1, 2, 0, 1, 2, 2]


def test_both_date_layouts():
    raw = pd.Series(["2023-12-05 11:00:00", "23.12.2023 12:10", "23.12.2023 12:10:05", "31.02.2024 10:00", "", "x"],
                    dtype="str")
    parsed = parse_timestamps(raw)
    assert parsed.tolist()[:3] == [pd.Timestamp("2023-12-05 11:00"), pd.Timestamp("2023-12-23 12:10"),
                                   pd.Timestamp("2023-12-23 12:10:05")]
    assert parsed.iloc[3:].isna().all()


# -- the online filter and the tags ----------------------------------------------------------

def test_seed_online_filter_on_the_seed_rows():
    assert matches_seed_online_filter(SWITCH) is False  # online only after the switch: pattern 1 misses it
    assert matches_seed_online_filter(STAYED) is True


@pytest.mark.parametrize("comment, expected", [
    ('Установлен хештег "#онлайн"', True),
    ('Установлен хештег "#офлайн"', False),
    ("Были хештеги: , стали: #entry-email #онлайн", True),
    ("Были хештеги: #entry-email #оулайн, стали: #entry-email #онлайн", True),
    ("Были хештеги: #оглайн, стали: #онлайн", True),
    ("Были хештеги: #онлайн, стали: #офлайн", False),
    ("были хештеги: #онлайн, стали: #онлайн", False),  # LIKE is case-sensitive
    (None, False),
])
def test_seed_online_filter_patterns(comment, expected):
    assert matches_seed_online_filter(comment) is expected


def test_tags_after_on_the_seed_rows():
    assert tags_after(SWITCH) == ["#entry-email", "#онлайн"]
    assert is_online(tags_after(SWITCH)) and not has_payment(tags_after(SWITCH))
    after = tags_after(STAYED)
    assert after == ["#мотив", "#онлайн", "#M1-завершил", "#M1-оплачен", "#M2-завершил"]
    assert is_online(after) and has_payment(after)
    assert tags_before(SWITCH) == ["#entry-email", "#офлайн"]


def test_where_the_filter_and_the_tags_disagree():
    """A switch офлайн→онлайн: the customer's filter says no, the student's tags say online."""
    assert not matches_seed_online_filter(SWITCH) and is_online(tags_after(SWITCH))
    substring = "Были хештеги: #онлайн, стали: #онлайн-интенсив"
    assert matches_seed_online_filter(substring) and not is_online(tags_after(substring))


def test_set_form_adds_to_the_previous_tags():
    assert tags_after('Установлен хештег "#онлайн"', ["#entry-email"]) == ["#entry-email", "#онлайн"]
    assert tags_before('Установлен хештег "#онлайн"') is None
    assert tags_after("Были хештеги: , стали: ") == []
    with pytest.raises(ValueError):
        tags_after("Удалена группа")
