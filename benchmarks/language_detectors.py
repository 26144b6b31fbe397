"""langdetect vs lingua-language-detector on hand-written multilingual examples: accuracy, speed, memory.

Why: the language check needs a detector that separates close relatives (es/pt, de/nl, it/es) on one
sentence and finds a foreign clause inside a sentence; langdetect is unmaintained and random by design.
The examples below were written for this benchmark (not taken from any corpus): single words and short
phrases (1-4 words), full sentences, and mixed sentences with a clause in another language.

Prints, side by side: accuracy per group, time per call, first-call (load) time and peak RSS in a fresh
process for langdetect, lingua over all 75 languages (lazy and preloaded) and lingua restricted to the
languages evalsuite's detector knows (evalsuite.metrics.lingua_detect, what the language check uses),
and lingua's low-accuracy mode (small models only).
Run: .venv/bin/python benchmarks/language_detectors.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

# (language, text). Short = 1-4 words; sentences are ordinary single sentences.
SHORT: list[tuple[str, str]] = [
    ("en", "the weather is nice"), ("en", "thank you very much"), ("en", "where is the station"),
    ("es", "muchas gracias amigo"), ("es", "dónde está la estación"), ("es", "el perro duerme"),
    ("pt", "muito obrigado amigo"), ("pt", "onde fica a estação"), ("pt", "o cão dorme"),
    ("fr", "merci beaucoup"), ("fr", "où est la gare"), ("fr", "le chien dort"),
    ("it", "grazie mille"), ("it", "dov'è la stazione"), ("it", "il cane dorme"),
    ("de", "vielen Dank"), ("de", "wo ist der Bahnhof"), ("de", "der Hund schläft"),
    ("nl", "hartelijk bedankt"), ("nl", "waar is het station"), ("nl", "de hond slaapt"),
    ("pl", "dziękuję bardzo"), ("pl", "gdzie jest dworzec"), ("pl", "pies śpi"),
    ("sv", "tack så mycket"), ("sv", "var ligger stationen"), ("sv", "hunden sover"),
    ("tr", "çok teşekkürler"), ("tr", "istasyon nerede"), ("tr", "köpek uyuyor"),
    ("ru", "большое спасибо"), ("ru", "где вокзал"), ("ru", "собака спит"),
    ("uk", "щиро дякую"), ("uk", "де вокзал"), ("uk", "собака спить"),
    ("el", "ευχαριστώ πολύ"), ("el", "πού είναι ο σταθμός"), ("el", "ο σκύλος κοιμάται"),
    ("ar", "شكرا جزيلا"), ("ar", "أين المحطة"), ("ar", "الكلب نائم"),
    ("he", "תודה רבה"), ("he", "איפה התחנה"), ("he", "הכלב ישן"),
    ("hi", "बहुत धन्यवाद"), ("hi", "स्टेशन कहाँ है"), ("hi", "कुत्ता सो रहा है"),
    ("zh", "非常感谢"), ("zh", "火车站在哪里"), ("zh", "狗在睡觉"),
    ("ja", "ありがとうございます"), ("ja", "駅はどこですか"), ("ja", "犬が寝ている"),
    ("ko", "감사합니다"), ("ko", "역이 어디예요"), ("ko", "개가 자고 있어요"),
]
SENTENCES: list[tuple[str, str]] = [
    ("en", "The river was too deep to cross, so we walked upstream until we found a bridge."),
    ("en", "A monad is a design pattern that lets you chain computations with context."),
    ("es", "El río era demasiado profundo para cruzarlo, así que caminamos hasta encontrar un puente."),
    ("es", "Mañana vamos a visitar a mis abuelos que viven cerca de la costa."),
    ("pt", "O rio era fundo demais para atravessar, então andamos até encontrar uma ponte."),
    ("pt", "Amanhã vamos visitar os meus avós que moram perto do litoral."),
    ("fr", "La rivière était trop profonde pour la traverser, alors nous avons marché jusqu'au pont."),
    ("fr", "Demain nous rendrons visite à mes grands-parents qui habitent près de la mer."),
    ("it", "Il fiume era troppo profondo da attraversare, così abbiamo camminato fino al ponte."),
    ("it", "Domani andiamo a trovare i miei nonni che abitano vicino alla costa."),
    ("de", "Der Fluss war zu tief, um ihn zu überqueren, also liefen wir bis zur Brücke."),
    ("de", "Morgen besuchen wir meine Großeltern, die in der Nähe der Küste wohnen."),
    ("nl", "De rivier was te diep om over te steken, dus liepen we naar de brug."),
    ("nl", "Morgen gaan we bij mijn grootouders op bezoek, die vlak bij de kust wonen."),
    ("pl", "Rzeka była zbyt głęboka, żeby ją przejść, więc poszliśmy w górę do mostu."),
    ("sv", "Floden var för djup för att korsa, så vi gick uppströms tills vi hittade en bro."),
    ("tr", "Nehir geçilemeyecek kadar derindi, bu yüzden bir köprü bulana kadar yürüdük."),
    ("ru", "Река была слишком глубокой, поэтому мы пошли вверх по течению к мосту."),
    ("uk", "Річка була надто глибокою, тому ми пішли вгору за течією до мосту."),
    ("el", "Το ποτάμι ήταν πολύ βαθύ για να το περάσουμε, οπότε περπατήσαμε ως τη γέφυρα."),
    ("ar", "كان النهر عميقا جدا لعبوره، لذلك مشينا حتى وجدنا جسرا."),
    ("he", "הנהר היה עמוק מדי לחצייה, אז הלכנו במעלה הזרם עד שמצאנו גשר."),
    ("hi", "नदी पार करने के लिए बहुत गहरी थी, इसलिए हम पुल तक चलते रहे।"),
    ("zh", "河水太深了，没法过去，所以我们沿着河往上走，直到找到一座桥。"),
    ("ja", "川が深すぎて渡れなかったので、橋を見つけるまで上流へ歩きました。"),
    ("ko", "강이 너무 깊어서 건널 수 없었기 때문에 다리를 찾을 때까지 상류로 걸었습니다."),
]
# (language of the sentence, language of the inserted clause, text)
MIXED: list[tuple[str, str, str]] = [
    ("fr", "en", "Je suis allé au marché ce matin and then I went back home to cook dinner."),
    ("es", "en", "El clima está hermoso hoy y I plan to go hiking with my friends."),
    ("de", "en", "Wir haben das Projekt gestern abgeschlossen but the client has not paid yet."),
    ("it", "en", "Ho comprato il pane al forno because the shop near my house was closed."),
    ("pt", "en", "Ela estudou a noite inteira and she finally passed the difficult exam."),
    ("nl", "en", "We gingen naar het strand but it started raining after an hour."),
    ("ru", "en", "Я долго искал ключи, but I could not find them anywhere in the house."),
    ("el", "en", "Πήγαμε στην παραλία νωρίς and we stayed there until the sun went down."),
    ("es", "pt", "Mañana vamos a la playa, mas eu não sei se vai fazer sol amanhã."),
    ("de", "nl", "Ich habe das Buch gelesen, maar ik vond het einde niet zo goed."),
    ("it", "es", "Abbiamo cenato in un ristorante piccolo, pero la comida estaba muy rica."),
    ("en", "fr", "We visited the old town yesterday, mais il faisait vraiment trop froid."),
]

CODES = ("en", "es", "pt", "fr", "it", "de", "nl", "pl", "sv", "tr", "ru", "uk", "el", "ar", "he", "hi",
         "zh", "ja", "ko")


def _langdetect():  # type: ignore[no-untyped-def]
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
    from langdetect.lang_detect_exception import LangDetectException

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)  # langdetect samples features at random: seed it, as evalsuite did

    def probs(text: str) -> dict[str, float]:
        det = factory.create()
        det.append(text)
        try:
            found = det.get_probabilities()
        except LangDetectException:  # no features in the text
            return {}
        out: dict[str, float] = {}
        for p in found:
            code = p.lang.split("-")[0]
            out[code] = out.get(code, 0.0) + p.prob
        return out

    return probs


def _lingua(name: str):  # type: ignore[no-untyped-def]
    from lingua import LanguageDetectorBuilder

    from evalsuite.metrics.lingua_detect import detector, iso_code

    if name == "lingua-evalsuite":
        det = detector()  # exactly what the language check uses
    else:
        builder = LanguageDetectorBuilder.from_all_languages()
        if name.endswith("preloaded"):
            builder = builder.with_preloaded_language_models()
        if name.endswith("low"):
            builder = builder.with_low_accuracy_mode()
        det = builder.build()

    def probs(text: str) -> dict[str, float]:
        return {iso_code(c.language): c.value for c in det.compute_language_confidence_values(text) if c.value > 0}

    return probs


def _make(name: str):  # type: ignore[no-untyped-def]
    if name == "langdetect":
        return _langdetect()
    return _lingua(name)


def _top(probs: dict[str, float]) -> str | None:
    return max(probs, key=probs.__getitem__) if probs else None


def measure(name: str) -> dict[str, float]:
    """Run in a fresh process: load time, accuracy per group, time per call, peak RSS."""
    import resource

    start = time.perf_counter()
    probs = _make(name)
    probs("warm up the models for Latin, Cyrillic and Han: это 测试")
    load_s = time.perf_counter() - start
    out: dict[str, float] = {"load_s": load_s}
    for group, items in (("short", SHORT), ("sentence", SENTENCES)):
        ok = sum(_top(probs(text)) == lang for lang, text in items)
        out[f"{group}_acc"] = ok / len(items)
    # Mixed: both languages must get >= 0.1 of the probability mass of the whole sentence.
    out["mixed_both"] = sum(
        probs(text).get(a, 0) >= 0.1 and probs(text).get(b, 0) >= 0.1 for a, b, text in MIXED
    ) / len(MIXED)
    texts = [t for _, t in SHORT + SENTENCES]
    start = time.perf_counter()
    for _ in range(3):
        for t in texts:
            probs(t)
    out["ms_per_call"] = (time.perf_counter() - start) / (3 * len(texts)) * 1000
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def mixed_segments() -> float:
    """lingua's own mixed-text segmentation: share of MIXED sentences split into exactly the two languages."""
    from evalsuite.metrics.lingua_detect import detector, iso_code

    det = detector()
    ok = 0
    for a, b, text in MIXED:
        found = [iso_code(r.language) for r in det.detect_multiple_languages_of(text)]
        ok += found == [a, b]
    return ok / len(MIXED)


def check_on_examples() -> tuple[int, int, float]:
    """evalsuite's language check on the examples: mixed sentences flagged, clean sentences flagged,
    milliseconds per check."""
    from evalsuite.metrics.language import check_language

    items = [(lang, text) for lang, _, text in MIXED] + SENTENCES
    for lang, text in items:  # lingua loads each script's models on first sight: not timed
        check_language(text, lang)
    start = time.perf_counter()
    flagged = [not check_language(text, lang).passed for lang, text in items]
    ms = (time.perf_counter() - start) / len(items) * 1000
    return sum(flagged[: len(MIXED)]), sum(flagged[len(MIXED) :]), ms


CONTESTANTS = ("langdetect", "lingua-all-lazy", "lingua-all-preloaded", "lingua-all-low", "lingua-evalsuite")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", choices=CONTESTANTS, help=argparse.SUPPRESS)  # child process mode
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    rows = {}
    for name in CONTESTANTS:
        res = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True, check=True)
        rows[name] = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"examples: {len(SHORT)} short (1-4 words), {len(SENTENCES)} sentences, {len(MIXED)} mixed; "
          f"{len({lang for lang, _ in SHORT + SENTENCES})} languages")
    cols = ("short_acc", "sentence_acc", "mixed_both", "ms_per_call", "load_s", "peak_rss_mb")
    print(f"{'detector':22s}" + "".join(f"{c:>14s}" for c in cols))
    for name, row in rows.items():
        print(f"{name:22s}" + "".join(f"{row[c]:14.3f}" for c in cols))
    base = rows["langdetect"]
    ours = rows["lingua-evalsuite"]
    print(f"lingua-evalsuite / langdetect: time per call {ours['ms_per_call'] / base['ms_per_call']:.2f}x, "
          f"peak RSS {ours['peak_rss_mb'] / base['peak_rss_mb']:.2f}x, load {ours['load_s'] / base['load_s']:.2f}x")
    print(f"lingua detect_multiple_languages_of: {mixed_segments():.3f} of mixed sentences split into "
          "exactly [sentence language, clause language]")
    mixed, clean, ms = check_on_examples()
    print(f"evalsuite check_language (lingua + codeswitch): flags {mixed}/{len(MIXED)} mixed sentences, "
          f"{clean}/{len(SENTENCES)} single-language sentences (false alarms); {ms:.1f} ms per sentence")


if __name__ == "__main__":
    main()
