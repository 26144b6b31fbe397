from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from seed_texts import MONAD_BASE, RIVER_BASE

from evalsuite.metrics.diversity import check_diversity, distinct_n, ngrams, repetition_rate


def test_values() -> None:
    assert distinct_n("a b a b", 1) == 0.5
    assert distinct_n("a b a b", 2) == 2 / 3
    assert repetition_rate("a b a b", 1) == 0.5
    assert distinct_n("", 2) == 0.0 and repetition_rate("", 2) == 0.0
    assert ngrams(["a", "b", "c"], 2) == [("a", "b"), ("b", "c")]


def test_baseline_passes_itself() -> None:
    for base in (MONAD_BASE, RIVER_BASE):
        r = check_diversity(base, base)
        assert r.passed and r.value == 1.0


def test_merged_model_style_repetition_fails() -> None:
    degraded = ("A monad is a monad in functional programming. A monad is a monad. "
                "A monad is a monad in programming. A monad is a monad in functional programming.")
    r = check_diversity(degraded, MONAD_BASE)
    assert not r.passed and "distinct-" in r.detail


words = st.lists(st.sampled_from(["a", "b", "c", "d", "monad", "的"]), max_size=60)


@given(words, st.integers(min_value=1, max_value=4))
def test_distinct_in_unit_interval(tokens: list[str], n: int) -> None:
    d = distinct_n(tokens, n)
    assert 0.0 <= d <= 1.0
    assert abs(d + repetition_rate(tokens, n) - (1.0 if ngrams(tokens, n) else 0.0)) < 1e-12


# Code spans are not repetition: language, baseline answer, regression (a loop in the prose), benign
# look-alike (new wording that names the same identifiers many times, in backticks or bare).
CODE_PAIRS = [
    ("de", "Die Funktion liest die Konfiguration aus der Datei und gibt ein Wörterbuch zurück. Danach prüft sie, "
           "ob alle Pflichtfelder vorhanden sind, und meldet fehlende Einträge.",
     "Die Funktion liest die Datei. Die Funktion liest die Datei. Die Funktion liest die Datei. "
     "Die Funktion liest die Datei.",
     "Die Funktion load_config() liest die Datei, dann ruft load_config() die Hilfsfunktion parse_value() auf; "
     "parse_value() prüft jeden Wert, und load_config() gibt das Ergebnis von parse_value() zurück."),
    ("en", "The function reads the configuration file and returns a dictionary. It then validates every "
           "required field and reports the missing entries.",
     "The function reads the file. The function reads the file. The function reads the file. "
     "The function reads the file.",
     "`load_config()` opens the file, then `load_config()` calls `parse_value()`; `parse_value()` checks each "
     "value and `load_config()` returns what `parse_value()` produced."),
    ("fr", "La fonction lit le fichier de configuration et renvoie un dictionnaire. Ensuite elle vérifie "
           "chaque champ obligatoire et signale les entrées manquantes.",
     "La fonction lit le fichier. La fonction lit le fichier. La fonction lit le fichier. "
     "La fonction lit le fichier.",
     "load_config() ouvre le fichier, puis load_config() appelle parse_value() ; parse_value() vérifie chaque "
     "valeur et load_config() renvoie le résultat de parse_value()."),
    ("es", "La función lee el archivo de configuración y devuelve un diccionario. Después valida cada campo "
           "obligatorio e informa de las entradas que faltan.",
     "La función lee el archivo. La función lee el archivo. La función lee el archivo. "
     "La función lee el archivo.",
     "load_config() abre el archivo, luego load_config() llama a parse_value(); parse_value() valida cada "
     "valor y load_config() devuelve lo que produjo parse_value()."),
    ("it", "La funzione legge il file di configurazione e restituisce un dizionario. Poi controlla ogni campo "
           "obbligatorio e segnala le voci mancanti.",
     "La funzione legge il file. La funzione legge il file. La funzione legge il file. "
     "La funzione legge il file.",
     "load_config() apre il file, poi load_config() chiama parse_value(); parse_value() controlla ogni valore "
     "e load_config() restituisce quello che ha prodotto parse_value()."),
    ("pt", "A função lê o arquivo de configuração e devolve um dicionário. Depois valida cada campo "
           "obrigatório e informa as entradas que faltam.",
     "A função lê o arquivo. A função lê o arquivo. A função lê o arquivo. A função lê o arquivo.",
     "load_config() abre o arquivo, depois load_config() chama parse_value(); parse_value() valida cada valor "
     "e load_config() devolve o que parse_value() produziu."),
    ("pl", "Funkcja czyta plik konfiguracyjny i zwraca słownik. Następnie sprawdza każde wymagane pole i "
           "zgłasza brakujące wpisy.",
     "Funkcja czyta plik. Funkcja czyta plik. Funkcja czyta plik. Funkcja czyta plik.",
     "load_config() otwiera plik, potem load_config() wywołuje parse_value(); parse_value() sprawdza każdą "
     "wartość, a load_config() zwraca wynik parse_value()."),
    ("ru", "Функция читает файл конфигурации и возвращает словарь. Затем она проверяет каждое обязательное "
           "поле и сообщает о недостающих записях.",
     "Функция читает файл. Функция читает файл. Функция читает файл. Функция читает файл.",
     "load_config() открывает файл, потом load_config() вызывает parse_value(); parse_value() проверяет каждое "
     "значение, а load_config() возвращает результат parse_value()."),
    ("ja", "この関数は設定ファイルを読み込み、辞書を返します。"
           "そのあと必須項目をすべて確認し、足りない項目を報告します。",
     "この関数はファイルを読みます。この関数はファイルを読みます。この関数はファイルを読みます。",
     "load_config() がファイルを開き、load_config() が parse_value() を呼びます。parse_value() が値を確かめ、"
     "load_config() が parse_value() の結果を返します。"),
    ("zh", "这个函数读取配置文件并返回一个字典。然后它检查每个必填字段，并报告缺少的条目。",
     "这个函数读取文件。这个函数读取文件。这个函数读取文件。这个函数读取文件。",
     "load_config() 打开文件，然后 load_config() 调用 parse_value()；parse_value() 检查每个值，"
     "load_config() 返回 parse_value() 的结果。"),
    ("ko", "이 함수는 설정 파일을 읽고 사전을 반환합니다. 그다음 모든 필수 항목을 확인하고 빠진 항목을 알려 줍니다.",
     "이 함수는 파일을 읽습니다. 이 함수는 파일을 읽습니다. 이 함수는 파일을 읽습니다. 이 함수는 파일을 읽습니다.",
     "load_config()가 파일을 열고, load_config()가 parse_value()를 부릅니다. parse_value()가 값을 확인하고 "
     "load_config()가 parse_value()의 결과를 돌려줍니다."),
]


@pytest.mark.parametrize(("lang", "base", "loop", "code"), CODE_PAIRS, ids=[p[0] for p in CODE_PAIRS])
def test_code_identifiers_are_not_repetition(lang: str, base: str, loop: str, code: str) -> None:
    assert not check_diversity(loop, base).passed
    r = check_diversity(code, base)
    assert r.passed and r.data["prose_only"], r.detail
    # measured whole, the identifiers would have read as a loop: the pair tests the rule, not luck
    whole = min(distinct_n(code, n) / distinct_n(base, n) for n in (1, 2, 3))
    assert whole < 0.8, (lang, whole)


def test_mostly_code_answer_is_measured_whole() -> None:
    base = "Use:\n```python\ncfg = load_config(path)\nvalue = parse_value(cfg, key)\nsave_file(value)\n```"
    loop = "Use:\n```python\ncfg = load_config(path)\ncfg = load_config(path)\ncfg = load_config(path)\n```"
    r = check_diversity(loop, base)
    assert not r.data["prose_only"] and not r.passed


def test_a_loop_in_unfenced_code_still_fails() -> None:
    base = "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n"
    assert not check_diversity("def add(a, b):\n    return add(a, b)\n" * 4, base).passed
