"""Code-switching inside a sentence and same-script drift: each rule as a pair per language.

The regression (a clause in another language, a sentence drifted to a relative) must fail the language
check; its benign look-alike (the same sentence with brand names, acronyms, identifiers, URLs, quoted
titles or loanwords instead) must pass.
"""

from __future__ import annotations

import pytest

from evalsuite.metrics.codeswitch import other_script_runs, protected_spans, switched_runs
from evalsuite.metrics.language import check_language

# expected language, regression (foreign clause inside a sentence), benign look-alike
OTHER_SCRIPT_PAIRS = [
    ("ru", "Вчера мы долго гуляли по парку, and then we had dinner at a small cafe.",
     "Вчера мы долго гуляли по парку, а потом смотрели «The Good Place» на Netflix."),
    ("uk", "Ми приїхали до Львова вранці, but the museum was closed all day.",
     "Ми приїхали до Львова вранці й купили квитки через Google Maps та Booking."),
    ("el", "Διάβασα το βιβλίο χθες το βράδυ, but I did not like the ending at all.",
     "Διάβασα το βιβλίο χθες στο Kindle και μετά έστειλα email στον Γιώργο."),
    ("ar", "أنهيت المشروع أمس، but my manager wants some more changes tomorrow.",
     "أنهيت المشروع أمس باستخدام Python و Visual Studio Code على نظام Linux."),
    ("he", "סיימנו את העבודה מוקדם, so we decided to go to the beach together.",
     "סיימנו את העבודה מוקדם ושלחנו את הקובץ report_final.pdf דרך Gmail."),
    ("hi", "हमने सुबह जल्दी नाश्ता किया, and after that we went for a long walk.",
     "हमने सुबह जल्दी नाश्ता किया और फिर YouTube पर BBC News देखा।"),
    ("zh", "我们昨天去了博物馆，but most of the rooms were closed for repairs。",
     "我们昨天去了博物馆，用 iPhone 拍了很多照片，然后发到了 WeChat 上。"),
    ("ja", "昨日は友達と映画を見ました、and after the movie we ate some ramen。",
     "昨日は友達と「Star Wars」を見て、そのあと Uber Eats で夕食を頼みました。"),
    ("ko", "어제 친구들과 영화를 봤는데, but the ending was really disappointing.",
     "어제 친구들과 Netflix에서 영화를 보고 KakaoTalk으로 후기를 보냈어요."),
    ("ru", "Функция возвращает список, which is then sorted by the caller in place.",
     "Функция get_items() возвращает список, см. https://docs.python.org/3/library/stdtypes.html."),
]

# expected language, regression (same-script clause in another language), benign look-alike
SAME_SCRIPT_PAIRS = [
    ("fr", "Nous avons visité le château ce matin, but the gardens were closed for the winter.",
     "Nous avons visité le château ce matin, puis nous avons lu « The Secret Garden » au café."),
    ("de", "Wir sind früh am Bahnhof angekommen, but the train was delayed by an hour.",
     "Wir sind früh am Bahnhof angekommen und haben im Starbucks einen Coffee to go gekauft."),
    ("es", "Terminamos el informe antes del viernes, but the client asked for more changes.",
     "Terminamos el informe antes del viernes y lo subimos a Google Drive como PDF."),
    ("it", "Abbiamo finito la cena molto tardi, and then we walked back to the hotel.",
     "Abbiamo finito la cena molto tardi e poi abbiamo guardato Netflix sul MacBook."),
    ("pt", "Chegamos ao aeroporto muito cedo, but the flight was cancelled anyway.",
     "Chegamos ao aeroporto muito cedo e fizemos o check-in pelo app da TAP."),
    ("nl", "We hebben het huis gisteren geschilderd, but the paint is still not dry.",
     "We hebben het huis gisteren geschilderd en de foto's op Instagram gezet."),
    ("en", "We finished the report on Friday, aber der Kunde wollte noch viele Änderungen.",
     "We finished the report on Friday and sent it to Müller GmbH in Düsseldorf."),
    ("es", "Mañana iremos al mercado temprano, mas eu acho que vai chover muito à tarde.",
     "Mañana iremos al mercado temprano para comprar fruta, pan y un poco de queso."),
    ("de", "Ich habe den ganzen Tag gearbeitet, maar ik ben nog steeds niet klaar.",
     "Ich habe den ganzen Tag gearbeitet und die Funktion parseConfig() in utils.py repariert."),
    ("it", "Siamo andati al mare con gli amici, pero el agua estaba demasiado fría.",
     "Siamo andati al mare con gli amici e abbiamo fatto un picnic con focaccia."),
]

# expected language, regression (the whole sentence in a close relative), benign sentence
DRIFT_PAIRS = [
    ("es", "Amanhã vamos visitar os nossos primos que moram no interior do estado.",
     "Mañana vamos a visitar a nuestros primos que viven en el interior del país."),
    ("de", "Morgen gaan we met de trein naar de stad om boodschappen te doen.",
     "Morgen fahren wir mit dem Zug in die Stadt, um einzukaufen."),
    ("it", "Mañana vamos a cocinar una paella grande para toda la familia.",
     "Domani cucineremo una grande paella per tutta la famiglia."),
    ("pt", "Mañana vamos a visitar a nuestros primos que viven en el interior del país.",
     "Amanhã vamos visitar os nossos primos que moram no interior do estado."),
    ("nl", "Morgen fahren wir mit dem Zug in die Stadt, um einzukaufen.",
     "Morgen gaan we met de trein naar de stad om boodschappen te doen."),
    ("es", "Domani cucineremo una grande paella per tutta la famiglia.",
     "Mañana cocinaremos una paella grande para toda la familia."),
]


def _kinds(text: str, lang: str) -> list[str]:
    return [f["kind"] for f in check_language(text, lang).data["findings"]]


@pytest.mark.parametrize(("lang", "bad", "good"), OTHER_SCRIPT_PAIRS, ids=[p[0] for p in OTHER_SCRIPT_PAIRS])
def test_latin_clause_inside_other_script(lang: str, bad: str, good: str) -> None:
    r = check_language(bad, lang)
    assert not r.passed and "foreign_words" in _kinds(bad, lang), r.detail
    found = next(f for f in r.data["findings"] if f["kind"] == "foreign_words")
    assert found["detected"] == "en" and found["run"].split()[-1] in bad
    ok = check_language(good, lang)
    assert ok.passed, ok.detail


@pytest.mark.parametrize(("lang", "bad", "good"), SAME_SCRIPT_PAIRS, ids=[p[0] for p in SAME_SCRIPT_PAIRS])
def test_same_script_clause_inside_sentence(lang: str, bad: str, good: str) -> None:
    r = check_language(bad, lang)
    assert not r.passed, f"missed the switch in {bad!r}"
    assert {"switched_clause", "sentence_language"} & set(_kinds(bad, lang)), r.detail
    ok = check_language(good, lang)
    assert ok.passed, ok.detail


@pytest.mark.parametrize(("lang", "bad", "good"), DRIFT_PAIRS, ids=[f"{p[0]}" for p in DRIFT_PAIRS])
def test_same_script_drift_to_a_relative(lang: str, bad: str, good: str) -> None:
    r = check_language(bad, lang)
    assert not r.passed and "sentence_language" in _kinds(bad, lang), r.detail
    ok = check_language(good, lang)
    assert ok.passed, ok.detail


def test_switched_run_names_the_clause() -> None:
    sent = "Nous avons visité le château ce matin, but the gardens were closed for the winter."
    runs = switched_runs(sent, "fr")
    assert len(runs) == 1 and runs[0].lang == "en"
    assert "gardens were closed" in runs[0].text and "château" not in runs[0].text


def test_loanwords_between_own_function_words_are_not_a_switch() -> None:
    assert switched_runs("Nous avons fait du brainstorming pendant le meeting avec l'équipe.", "fr") == []
    assert switched_runs("Wir haben das Meeting mit dem Team im Homeoffice gemacht.", "de") == []


def test_protected_spans() -> None:
    sent = 'See get_user_id(), https://x.org/a, «Le Petit Prince», NASA and Visual Studio Code.'
    covered = {sent[a:b] for a, b in protected_spans(sent)}
    assert {"get_user_id()", "https://x.org/a,", "«Le Petit Prince»", "NASA", "Visual Studio Code"} <= covered


def test_two_lowercase_words_are_a_loan_phrase_not_a_clause() -> None:
    assert other_script_runs("Мы используем machine learning в работе.", {"Cyrillic"}) == []
    runs = other_script_runs("Мы используем то, that we learned in school.", {"Cyrillic"})
    assert [r.text for r in runs] == ["that we learned in school"]


def test_baseline_with_the_same_clause_is_not_a_new_finding() -> None:
    # The gate compares finding counts with the baseline's; here both have the same clause.
    text = OTHER_SCRIPT_PAIRS[0][1]
    assert check_language(text, "ru").value == check_language(text, "ru", baseline=text).value == 1
