"""The pure pieces of etl.py: value checks, file recognition, pairing, the dictionary check, output names."""

from __future__ import annotations

from pathlib import Path

import pytest

from coilgen.dictionary import col_info_csv, dictionary_txt
from etl.etl import (
    DICTIONARY,
    EVAL,
    LABELLED,
    TARGET_YES_NO,
    TARGETS,
    EtlError,
    FileInfo,
    check_dictionary,
    check_row,
    check_value,
    csv_field,
    make_plan,
    output_names,
    sniff,
)


@pytest.mark.parametrize(
    ("index", "raw", "token"),
    [
        (0, b"1", b'"High Income, expensive child"'),
        (0, b"36", b"Couples with teens 'Married with children'"),
        (4, b"10", b"Farmers"),
        (1, b" 3 ", b"3"),
        (1, b"03", b"3"),
        (64, b"12", b"12"),
        (85, b"1", b"1"),
    ],
)
def test_valid_values_map_to_their_output_token(index, raw, token):
    assert check_value(index, raw) == (token, "", "")


@pytest.mark.parametrize(
    ("index", "raw", "reason"),
    [
        (1, b"x", "MAANTHUI (column 2): 'x' is not an integer"),
        (1, b"3.5", "MAANTHUI (column 2): '3.5' is not an integer"),
        (1, b"", "MAANTHUI (column 2): missing value"),
        (4, b"11", "MOSHOOFD (column 5): 11 is outside its domain 1-10"),
        (0, b"0", "MOSTYPE (column 1): 0 is outside its domain 1-41"),
        (85, b"2", "CARAVAN (column 86): 2 is outside its domain 0-1"),
        (64, b"-1", "AWAPART (column 65): -1 is outside its domain 0-99"),
    ],
)
def test_invalid_values_are_refused_with_a_reason(index, raw, reason):
    token, text, _ = check_value(index, raw)
    assert token is None
    assert text == reason


def test_purchase_takes_yes_and_no_only():
    assert check_value(85, b"Yes", TARGET_YES_NO)[0] == b"1"
    assert check_value(85, b"No", TARGET_YES_NO)[0] == b"0"
    assert check_value(85, b"1", TARGET_YES_NO)[1] == "CARAVAN (column 86): '1' is not Yes or No"


def test_a_row_lists_every_bad_value_and_counts_the_first():
    fields = [b"1"] * 86
    fields[2], fields[10] = b"9", b"x"
    result = check_row(fields, "0/1", 86)
    assert result.line is None
    assert (
        result.reason
        == "MGEMOMV (column 3): 9 is outside its domain 1-6; MRELSA (column 11): 'x' is not an integer"
    )
    assert result.category == "MGEMOMV: outside its domain"
    assert check_row([b"1"] * 80, "0/1", 86).reason == "expected 86 fields, found 80"


def test_csv_fields_are_quoted_as_pandas_quotes_them():
    assert csv_field("Farmers") == "Farmers"
    assert csv_field("Young, low educated") == '"Young, low educated"'
    assert csv_field('say "hi"') == '"say ""hi"""'


def info_for(tmp_path: Path, name: str, content: bytes) -> FileInfo:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return sniff(FileInfo(path, name, len(content)))


ROW = ",".join(["1"] * 86)


@pytest.mark.parametrize(
    ("name", "content", "role", "layout", "header"),
    [
        ("ticdata2000.txt", ("\t".join(["1"] * 86) + "\n").encode(), LABELLED, "uci", None),
        ("ticeval2000.txt", ("\t".join(["1"] * 85) + "\r\n").encode(), EVAL, "uci", None),
        ("tictgts2000.txt", b"0\n1\n", TARGETS, "seed", "numbered?"),
        (
            "train.csv",
            (",".join(map(str, range(86))) + "\n" + ROW + "\n").encode(),
            LABELLED,
            "seed",
            "numbered",
        ),
        ("gt.csv", b"0\n1\n0\n", TARGETS, "seed", "numbered?"),
        ("whatever.dat", (ROW + "  \n" + ROW + "\n").encode(), LABELLED, "csv", None),
        ("dictionary.txt", dictionary_txt(), DICTIONARY, "dictionary", None),
        ("renamed.csv", col_info_csv(), DICTIONARY, "dictionary", None),
    ],
)
def test_files_are_recognised_by_content(tmp_path, name, content, role, layout, header):
    info = info_for(tmp_path, name, content)
    assert (info.role, info.layout, info.header) == (role, layout, header)


def test_a_bad_first_row_does_not_hide_the_file_shape(tmp_path):
    rows = [("\t".join(["1"] * 84)).encode()] + [("\t".join(["1"] * 86)).encode()] * 5
    info = info_for(tmp_path, "ticdata2000.txt", b"\n".join(rows) + b"\n")
    assert (info.role, info.ncols) == (LABELLED, 86)


def test_eval_files_pair_with_their_targets_and_come_after_labelled_files(tmp_path):
    eval85 = ("\t".join(["1"] * 85) + "\n").encode()
    infos = [
        info_for(tmp_path, "b/tictgts2000.txt", b"0\n"),
        info_for(tmp_path, "b/ticeval2000.txt", eval85),
        info_for(
            tmp_path,
            "a/test.csv",
            (",".join(map(str, range(85))) + "\n").encode() + eval85.replace(b"\t", b","),
        ),
        info_for(tmp_path, "a/gt.csv", b"0\n1\n"),
        info_for(tmp_path, "c/my_eval.txt", eval85),
        info_for(tmp_path, "c/my_targets.txt", b"1\n"),
        info_for(tmp_path, "z.csv", (ROW + "\n").encode()),
    ]
    plan = make_plan(infos, hosts=1)
    assert [f.name for f in plan.labelled] == ["z.csv"]
    assert [(e.name, t.name) for e, t in plan.pairs] == [
        ("a/test.csv", "a/gt.csv"),
        ("b/ticeval2000.txt", "b/tictgts2000.txt"),
        ("c/my_eval.txt", "c/my_targets.txt"),
    ]
    headers = {t.name: t.header for _, t in plan.pairs}
    assert headers == {"a/gt.csv": "numbered", "b/tictgts2000.txt": None, "c/my_targets.txt": None}


@pytest.mark.parametrize(
    "content", [dictionary_txt(), col_info_csv()], ids=["dictionary.txt", "col_info.csv"]
)
def test_the_shipped_dictionaries_match_the_schema(tmp_path, content):
    check_dictionary(info_for(tmp_path, "dict", content))


def test_a_dictionary_missing_a_column_is_refused(tmp_path):
    text = dictionary_txt().replace(b"\r\n86 CARAVAN", b"\r\nCARAVAN")
    with pytest.raises(EtlError, match="column 86 \\(CARAVAN\\) is missing"):
        check_dictionary(info_for(tmp_path, "dictionary.txt", text))


def test_part_files_are_named_after_the_host_only_with_several_hosts():
    assert output_names("algo-1", ["algo-1"])["full_data"] == "full_data.csv"
    assert output_names(None, [])["report"] == "report.json"
    assert output_names("algo-2", ["algo-1", "algo-2"]) == {
        "full_data": "full_data-algo-2.csv",
        "rejects": "rejects-algo-2.csv",
        "report": "report-algo-2.json",
    }
