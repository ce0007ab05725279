"""The console's words in Russian (the school's) and English: each request is answered in the language its
browser asks for first (`Accept-Language`), else in SCORER_REASON_LANGUAGE. The reasons are worded again from
their stored factors, so they speak the page's language too.

The language is the request's context (`speaking`), read by `say` wherever a page, a view-model or a chart
words something: a context variable, so the pages' functions need no language argument, and a thread the
route hands a query to (`asyncio.to_thread` copies the context) still says it in the request's language."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

from features.hypotheses import LANGUAGES, Factor, Language, describe, feature_name

_LANGUAGE: ContextVar[Language] = ContextVar("console_language", default="en")
T = TypeVar("T")


@contextlib.contextmanager
def holding(variable: ContextVar[T], value: T) -> Iterator[None]:
    """`variable` is `value` inside (a request's language, who signed in), as it was after."""
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)


def speaking(language: Language) -> contextlib.AbstractContextManager[None]:
    """Word everything inside in `language`."""
    return holding(_LANGUAGE, language)


def language() -> Language:
    return _LANGUAGE.get()


def say(key: str, **values: Any) -> str:
    """The text of `key` in the current language, its `{placeholders}` filled from `values`."""
    return _TEXTS[key][_LANGUAGE.get()].format(**values)


def negotiate(accept_language: str | None, default: Language) -> Language:
    """The first of the languages the browser accepts (by its q-values, ties in its order) that the console
    speaks; `default` when it names none of them (or sends nothing)."""
    ranked: list[tuple[float, int, str]] = []
    for order, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, order, tag.strip().lower().split("-")[0]))
    for quality, _, tag in sorted(ranked):
        if quality < 0 and tag in LANGUAGES:
            return tag
    return default


def term(name: str) -> str:
    """A status (active, dozing, asleep, finished) or an alert's kind as the page's language names it (an unknown
    one as it is)."""
    return say(f"term.{name}") if f"term.{name}" in _TEXTS else name


def group(name: str) -> str:
    """Students of a status (or an alert's kind) counted together: a column, a legend, a headline."""
    return say(f"group.{name}") if f"group.{name}" in _TEXTS else term(name)


def reworded(english: str) -> str:
    """A sentence another module words in English (`scorer uplift`'s verdicts), in the page's language."""
    return say(f"as.{english}") if f"as.{english}" in _TEXTS else english


def feature(name: str) -> str:
    """A feature's name for a curator (its code where the hypotheses do not word it)."""
    return feature_name(name, _LANGUAGE.get())


def reasons(factors: Sequence[dict[str, Any]] | None) -> list[str]:
    """The model's reasons as sentences in the page's language, worded from each stored factor (one stored
    without its parts shows its sentence as stored, or its code)."""
    out = []
    for factor in factors or ():
        if not isinstance(factor, dict):
            continue
        try:
            out.append(describe(Factor.from_json(factor), _LANGUAGE.get()))
        except (KeyError, TypeError, ValueError):
            out.append(str(factor.get("text") or factor.get("code") or ""))
    return [r for r in out if r]


def _t(en: str, ru: str) -> dict[Language, str]:
    return {"en": en, "ru": ru}


_TEXTS: dict[str, dict[Language, str]] = {
    # the frame
    "console": _t("edu-scorer console", "консоль edu-scorer"),
    "nav.courses": _t("Courses", "Курсы"),
    "nav.model": _t("Model", "Модель"),
    "nav.logout": _t("Log out", "Выйти"),
    "nav.courses_only": _t("courses {courses} only", "только курсы {courses}"),
    "none": _t("none", "нет"),
    # statuses (the seed's categories: active, falling asleep, asleep) and alerts' kinds
    "term.active": _t("active", "активен"),
    "term.dozing": _t("dozing", "засыпает"),
    "term.asleep": _t("asleep", "уснул"),
    "term.finished": _t("finished", "завершил"),
    "term.status_change": _t("status change", "смена статуса"),
    "term.at_risk": _t("early warning", "раннее предупреждение"),
    "group.active": _t("active", "активные"),
    "group.dozing": _t("dozing", "засыпающие"),
    "group.asleep": _t("asleep", "уснувшие"),
    "group.finished": _t("finished", "завершившие"),
    "group.at_risk": _t("early warning", "ранние предупреждения"),
    # `scorer uplift`'s words (online_models.uplift)
    "as.came back": _t("came back", "вернулись"),
    "as.stayed active": _t("stayed active", "остались активны"),
    "as.notifications help": _t("notifications help", "уведомления помогают"),
    "as.notifications hurt": _t("notifications hurt", "уведомления вредят"),
    "as.no effect shown": _t("no effect shown", "эффект не показан"),
    "as.not measurable (an empty group)": _t("not measurable (an empty group)", "не измерить (пустая группа)"),
    "as.95% Newcombe hybrid score (Wilson) interval of notified - held-out":
        _t("95% Newcombe hybrid score (Wilson) interval of notified - held-out",
           "95% интервал Ньюкомба (гибридный, по Уилсону) для «уведомлены − без уведомления»"),
    # login and refusals
    "login.title": _t("Log in", "Вход"),
    "login.off": _t("The console is off: SCORER_API_TOKEN is empty, so every page refuses every request.",
                    "Консоль выключена: SCORER_API_TOKEN пуст, и каждая страница отказывает каждому запросу."),
    "login.token": _t("Your token, or the read API's (SCORER_API_TOKEN)",
                      "Ваш токен или токен API чтения (SCORER_API_TOKEN)"),
    "login.submit": _t("Log in", "Войти"),
    "login.note": _t("The session lasts 12 hours; a new token ends every session. Each page that shows students is "
                     "recorded with whose token opened it (scorer reads).",
                     "Сессия длится 12 часов; новый токен завершает все сессии. Каждая страница, показывающая "
                     "учеников, записывается с тем, чей токен её открыл (scorer reads)."),
    "login.wrong": _t("Wrong token.", "Неверный токен."),
    "refused.title": _t("Refused", "Отказано"),
    "refused.token": _t("This token does not open the console.", "Этот токен не открывает консоль."),
    "refused.off": _t("The console is off: no token is configured (SCORER_API_TOKEN, SCORER_API_TOKENS_FILE).",
                      "Консоль выключена: токен не задан (SCORER_API_TOKEN, SCORER_API_TOKENS_FILE)."),
    "error.title": _t("Error", "Ошибка"),
    "error.parameter": _t("{message}", "Недопустимое значение параметра «{parameter}»."),
    "error.database": _t("database unavailable", "база данных недоступна"),
    "error.course": _t("Not one of your courses: your token reads the students of other courses.",
                       "Это не ваш курс: ваш токен открывает учеников других курсов."),
    # courses
    "courses.title": _t("Courses", "Курсы"),
    "courses.empty": _t("No scores yet: the worker has not written any enrolment.",
                        "Оценок пока нет: воркер не записал ни одного зачисления."),
    "courses.course": _t("course", "курс"),
    "courses.no_course": _t("(no course)", "(без курса)"),
    "enrolments": _t("enrolments", "зачислений"),
    # a course
    "course.title": _t("Course {course}", "Курс {course}"),
    "course.headline": _t("{total} enrolments: {counts}. Event time now: {now}",
                          "Зачислений: {total} ({counts}). Время событий сейчас: {now}"),
    "course.count": _t("{n} {group}", "{group}: {n}"),
    "course.headline_no_time": _t("{total} enrolments.", "Зачислений: {total}."),
    "course.empty": _t("No enrolment of this course has been scored yet.",
                       "Ни одно зачисление этого курса ещё не оценено."),
    "course.by_status": _t("Students by status over event time", "Ученики по статусам во времени событий"),
    "course.by_status_chart": _t("students by status", "ученики по статусам"),
    "course.stops": _t("Where students stop", "Где ученики останавливаются"),
    "course.stops_note": _t("The place of each student's last activity before going dozing or asleep.",
                            "Место последней активности ученика перед тем, как он начал засыпать или уснул."),
    "course.stops_by_week": _t("by course week", "по неделям курса"),
    "course.stops_by_place": _t("by module, theme and task (worst first)",
                                "по модулям, темам и заданиям (сначала худшие)"),
    "course.fell_dozing": _t("fell into dozing", "начали засыпать"),
    "course.fell_asleep": _t("fell asleep", "уснули"),
    "course.transitions": _t("transitions", "переходов"),
    "course.at_risk": _t("At risk", "В зоне риска"),
    "course.order": _t("Order", "Порядок"),
    "course.first_of": _t("The first {shown} of {total} enrolments, by {order}.",
                          "Первые {shown} из {total} зачислений, по порядку «{order}»."),
    "course.csv": _t("All {total} enrolments in this order as CSV", "Все {total} зачислений в этом порядке в CSV"),
    "course.csv_note": _t("(with the reasons and what answered each P(dropout))",
                          "(с причинами и тем, что дало каждую P(отчисления))"),
    "sort.reachable": _t("still reachable", "ещё достижимы"),
    "sort.p_dropout": _t("P(dropout)", "P(отчисления)"),
    "sort.status": _t("status", "статус"),
    "sort.days_inactive": _t("days inactive", "дней без активности"),
    "reachable_note": _t("still reachable: active and dozing students by P(dropout), then the asleep, the most "
                         "recently gone quiet first; finished last.",
                         "ещё достижимы: активные и засыпающие по P(отчисления), затем уснувшие, недавно затихшие "
                         "первыми; завершившие в конце."),
    "col.student": _t("student", "ученик"),
    "col.week": _t("week", "неделя"),
    "col.p_success": _t("P(success)", "P(успеха)"),
    "col.reasons": _t("reasons", "причины"),
    "trend_note": _t("week: P(dropout) now against {days} event-days earlier (↑ up by {step} or more, ↓ down, "
                     "→ steady, · no earlier score).",
                     "неделя: P(отчисления) сейчас против {days} дней событий назад (↑ выросла на {step} или "
                     "больше, ↓ снизилась, → без изменений, · ранней оценки нет)."),
    "trend.none": _t("no score a week earlier", "оценки неделю назад нет"),
    "trend.up": _t("risk rising: {before} → {now} in {days} days", "риск растёт: {before} → {now} за {days} дн."),
    "trend.down": _t("risk falling: {before} → {now} in {days} days",
                     "риск снижается: {before} → {now} за {days} дн."),
    "trend.flat": _t("steady: {before} → {now} in {days} days", "без изменений: {before} → {now} за {days} дн."),
    "guess.guess": _t("guess", "оценка"),
    "guess.calibrated_guess": _t("leveled guess", "выровненная оценка"),
    "guess.note": _t("guess: estimated from activity before any outcome was learned; it ranks students, but its "
                     "value is not a frequency. leveled guess: that estimate shifted to the level of the outcomes "
                     "learned so far. Unmarked: the course week's model, learned from outcomes.",
                     "оценка: по активности, до того как модель узнала хоть один итог; она упорядочивает "
                     "учеников, но её значение не частота. выровненная оценка: та же оценка, сдвинутая к уровню "
                     "уже известных итогов. Без пометки: модель недели курса, обученная на итогах."),
    # the risk quadrant
    "quadrant.title": _t("Risk quadrant", "Квадрант риска"),
    "quadrant.chart": _t("risk quadrant", "квадрант риска"),
    "quadrant.x": _t("engagement: {feature} (days active of the last 14)",
                     "вовлечённость: {feature} (активных дней из последних 14)"),
    "quadrant.y": _t("performance: {feature}", "успеваемость: {feature}"),
    "quadrant.point": _t("student {student}: {quadrant}", "ученик {student}: {quadrant}"),
    "quadrant.col": _t("quadrant", "квадрант"),
    "quadrant.note": _t("Engagement: {engagement}, days with any activity among the last 14; cut at {engagement_cut} "
                        "(two days a week). Performance: {performance}, successful attempts / all attempts (no "
                        "attempt: 0); cut at {performance_cut}. ",
                        "Вовлечённость: {engagement}, дни с любой активностью из последних 14; граница "
                        "{engagement_cut} (два дня в неделю). Успеваемость: {performance}, успешные попытки / все "
                        "попытки (без попыток: 0); граница {performance_cut}. "),
    "quadrant.finished": _t("Every enrolment has finished: each as it ended.",
                            "Все зачисления завершены: каждое в момент завершения."),
    "quadrant.unfinished": _t("Unfinished enrolments only", "Только незавершённые зачисления"),
    "quadrant.limit": _t(" (at most {limit}).", " (не больше {limit})."),
    "quadrant.on track": _t("on track", "в норме"),
    "quadrant.under-engaged": _t("under-engaged", "мало вовлечён"),
    "quadrant.academic risk": _t("academic risk", "учебный риск"),
    "quadrant.dropout risk": _t("dropout risk", "риск отчисления"),
    # notifications' effect
    "uplift.title": _t("Did the notifications work?", "Сработали ли уведомления?"),
    "uplift.none": _t("No enrolment of this course is held out of notifications (SCORER_HOLDOUT_SHARE is 0), so "
                      "there is no control group to compare the notified students with.",
                      "Ни одно зачисление этого курса не исключено из уведомлений (SCORER_HOLDOUT_SHARE равен 0), "
                      "поэтому нет контрольной группы для сравнения с уведомлёнными."),
    "uplift.outcome": _t("{outcome} in {days} days", "{outcome} за {days} дн."),
    "uplift.alert": _t("alert", "оповещение"),
    "uplift.outcome_col": _t("outcome", "исход"),
    "uplift.notified": _t("notified", "уведомлены"),
    "uplift.held_out": _t("held out", "без уведомления"),
    "uplift.difference": _t("difference", "разница"),
    "uplift.interval": _t("95% interval", "95% интервал"),
    "uplift.verdict": _t("verdict", "вывод"),
    "uplift.pp": _t("pp", "п.п."),
    "uplift.note": _t("The first alert of each kind per enrolment; {interval}; a verdict only when the interval "
                      "excludes 0. {share}% of enrolments are held out.",
                      "Первое оповещение каждого вида на зачисление; {interval}; вывод только когда интервал не "
                      "содержит 0. Без уведомлений: {share}% зачислений."),
    # a student
    "student.title": _t("Student {student}", "Ученик {student}"),
    "student.unseen": _t("The scorer has not seen this student.", "Скорер не видел этого ученика."),
    "student.enrolment": _t("Course {course}, enrolment {enrolment}", "Курс {course}, зачисление {enrolment}"),
    "student.summary": _t("status {status} since {since}; P(dropout) {p_dropout}, P(success) {p_success}, progress "
                          "forecast {progress}; last activity {last}",
                          "статус «{status}» с {since}; P(отчисления) {p_dropout}, P(успеха) {p_success}, прогноз "
                          "прогресса {progress}; последняя активность {last}"),
    "student.reasons": _t("Reasons", "Причины"),
    "student.days": _t("Day by day", "По дням"),
    "student.days_note": _t("One cell per day from the flow's start to the newest score, coloured by the status at "
                            "the day's end (from the status changes and score rows); a dot marks a day the student "
                            "was active (a login, page view, attempt or webinar event); hover for the day's alerts "
                            "and scores.",
                            "Одна клетка на день от начала потока до последней оценки, цвет: статус на конец дня "
                            "(по сменам статуса и оценкам); точка: день, когда ученик был активен (вход, просмотр "
                            "страницы, попытка, вебинар); наведите, чтобы увидеть оповещения и оценки дня."),
    "student.active_day": _t("active", "активен"),
    "student.timeline": _t("timeline", "статус по дням"),
    "student.scores": _t("Scores", "Оценки"),
    "student.probabilities": _t("P(dropout) and P(success)", "P(отчисления) и P(успеха)"),
    "student.probability": _t("probability", "вероятность"),
    "student.progress_chart": _t("progress forecast", "прогноз прогресса"),
    "student.progress": _t("progress", "прогресс"),
    "student.history": _t("Status history and alerts", "История статусов и оповещения"),
    "student.no_alert": _t("No alert for this enrolment.", "По этому зачислению оповещений нет."),
    "student.against": _t("Against the course", "В сравнении с курсом"),
    "col.at": _t("at", "когда"),
    "col.kind": _t("kind", "вид"),
    "col.change": _t("change", "переход"),
    "col.theme": _t("theme", "тема"),
    "col.task": _t("task", "задание"),
    "col.feature": _t("feature", "признак"),
    "col.this_student": _t("this student", "этот ученик"),
    "col.course_median": _t("course median", "медиана курса"),
    "col.difference": _t("difference", "разница"),
    "timeline.alert": _t("alert {change}", "оповещение {change}"),
    "timeline.early_warning": _t("early warning, P(dropout) {p_dropout}", "раннее предупреждение, P(отчисления) "
                                                                          "{p_dropout}"),
    "timeline.scored": _t("scored", "оценён"),
    "timeline.last_activity": _t("last activity", "последняя активность"),
    "place.module": _t("module {module}", "модуль {module}"),
    "place.theme": _t("theme {theme}", "тема {theme}"),
    "place.task": _t("task {task}", "задание {task}"),
    "place.unknown": _t("unknown place", "место неизвестно"),
    "week.short": _t("w{week}", "н{week}"),
    # the model
    "model.title": _t("Model", "Модель"),
    "model.none": _t("No model version published yet: the scores come from the label-free priors.",
                     "Версия модели ещё не опубликована: оценки дают априорные правила без итогов."),
    "model.current": _t("Current version", "Текущая версия"),
    "col.model": _t("model", "модель"),
    "col.version": _t("version", "версия"),
    "col.published": _t("published", "опубликована"),
    "col.labels_learned": _t("labels learned", "изучено итогов"),
    "col.rolling": _t("rolling quality", "скользящее качество"),
    "col.before_labels": _t("before a week has labels", "пока у недели нет итогов"),
    "model.priors": _t("the priors", "априорные правила"),
    "model.surrogate": _t("learned from {enrolments} running enrolments ({rows} earlier weeks)",
                          "обучена на {enrolments} идущих зачислениях ({rows} более ранних недель)"),
    "model.before_note": _t("Before a course week has learned labels of both classes, a version answers with a "
                            "guess learned from the enrolments still running (where they are in later weeks), or the "
                            "priors built on the school's hypotheses.",
                            "Пока неделя курса не изучила итоги обоих классов, версия отвечает оценкой, обученной на "
                            "ещё идущих зачислениях (где они оказались в более поздние недели), или априорными "
                            "правилами на гипотезах школы."),
    "model.by_course_week": _t("{model}: quality by course week (version {version})",
                               "{model}: качество по неделям курса (версия {version})"),
    "model.no_weeks": _t("Version {version} has no metrics by course week: it was published before they were "
                         "recorded, or before it learned any label.",
                         "У версии {version} нет метрик по неделям курса: она опубликована до того, как их стали "
                         "записывать, или до первого изученного итога."),
    "model.prequential": _t("Prequential: the model scores each label's examples before it learns them. A labelled "
                            "enrolment gives one example per course week it reached (that week's features); each "
                            "week's metrics are over its last {window} examples (progress error: those with a known "
                            "final progress), and 'examples' counts all it has learned. Week {cap}+ pools weeks "
                            "{cap} and later. '–': undefined (no example, or one class only for an AUC).",
                            "Последовательная оценка (prequential): модель оценивает примеры каждого итога до "
                            "того, как изучить их. "
                            "Зачисление с итогом даёт по примеру на каждую достигнутую неделю курса (признаки той "
                            "недели); метрики недели считаются по её последним {window} примерам (ошибка прогресса: "
                            "по тем, где итоговый прогресс известен), «примеры» считает все изученные. Неделя {cap}+ "
                            "объединяет недели с {cap}-й. «–»: не определено (нет примеров, или для AUC один "
                            "класс)."),
    "model.by_course_week_chart": _t("{group} by course week", "{group} по неделям курса"),
    "col.course_week": _t("course week", "неделя курса"),
    "col.examples": _t("examples", "примеры"),
    "model.stacks": _t("{model}: forest and guess by course week", "{model}: лес и оценка по неделям курса"),
    "model.stacks_note": _t("Where a course week's forest has learned both classes, its probability is the forest's "
                            "and the label-free guess's together: sigmoid(intercept + forest weight × logit(forest) "
                            "+ guess weight × logit(guess)), the weights fitted on the outcomes of the forest's last "
                            "fit. A guess weight near 0: the week trusts its forest; as large as the forest's: its "
                            "outcomes say the guess ranks as well.",
                            "Где лес недели курса изучил оба класса, вероятность даёт лес вместе с оценкой без "
                            "итогов: sigmoid(сдвиг + вес леса × logit(лес) + вес оценки × logit(оценка)), веса "
                            "подобраны на итогах последнего обучения леса. Вес оценки около 0: неделя доверяет "
                            "лесу; такой же, как у леса: итоги говорят, что оценка упорядочивает не хуже."),
    "model.stack_col": _t("{target}: {part} weight", "{target}: вес ({part})"),
    "target.dropout": _t("dropout", "отчисление"),
    "target.success": _t("success", "успех"),
    "part.forest": _t("forest", "лес"),
    "part.guess": _t("guess", "оценка"),
    "model.week_by_week": _t("{model}: week by week", "{model}: неделя за неделей"),
    "model.week_by_week_note": _t("Each week's last published version: its rolling quality (over its recent labels) "
                                  "and the labels learned that week.",
                                  "Последняя опубликованная версия каждой недели: её скользящее качество (по недавним "
                                  "итогам) и итоги, изученные за неделю."),
    "model.rolling_chart": _t("rolling {group} by week", "скользящая метрика «{group}» по неделям"),
    "model.labels_chart": _t("labels learned by week", "изучено итогов по неделям"),
    "model.labels": _t("labels", "итоги"),
    "col.labels_total": _t("labels (total)", "итогов (всего)"),
    "col.learned_that_week": _t("learned that week", "изучено за неделю"),
    "metric.auc": _t("AUC", "AUC"),
    "metric.logloss": _t("log loss", "log loss"),
    "metric.bias": _t("probability bias", "смещение вероятности"),
    "metric.bias_axis": _t("mean P − outcome", "средняя P − исход"),
    "metric.mae": _t("progress error", "ошибка прогресса"),
    "metric.mae_axis": _t("MAE", "MAE"),
    # charts
    "chart.no_data": _t("no data yet", "данных пока нет"),
}
