"""The rules and the pure pieces of the ETL on in-memory data: values, rows, blocks, files, pairing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from coilgen.dictionary import col_info_csv, dictionary_txt
from etl import clean, rules
from etl.layout import (
    BOM,
    DICTIONARY,
    EVAL,
    LABELLED,
    TARGETS,
    EtlError,
    FileInfo,
    check_dictionary,
    make_plan,
    sniff,
)
from etl.outputs import output_names
from etl.read import Block, line_numbers


def test_the_rules_give_every_column_its_domain_and_the_decoded_ones_their_labels():
    by_code = {c.code: c for c in rules.COLUMNS}
    assert (len(rules.COLUMNS), rules.N_FEATURES) == (86, 85)
    assert (by_code["MOSTYPE"].lo, by_code["MOSTYPE"].hi) == (1, 41)  # from code table L0
    assert (by_code["MAANTHUI"].lo, by_code["MAANTHUI"].hi) == (1, 10)  # a range
    assert by_code["MOSHOOFD"].labels[-1] == "Farmers"
    assert [c.code for c in rules.COLUMNS if c.labels] == list(rules.DECODED)


def test_decoding_a_column_without_a_code_table_is_refused(monkeypatch):
    monkeypatch.setattr(rules, "DECODED", ("MAANTHUI",))
    with pytest.raises(ValueError, match="MAANTHUI is in DECODED but its domain 1-10 is not a code table"):
        rules.column(2, "MAANTHUI", "zip_agg_number_of_houses", "1-10")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b" 3 ", 3),
        (b"03", 3),
        (b'"3"', 3),
        (b"+1", 1),
        (b"-1", -1),
        (b"", clean.MISSING),
        (b"x", clean.NOT_CODE),
        (b"1_0", clean.NOT_CODE),
        (b"3.5", clean.NOT_CODE),
        (b"1" * 5000, clean.HUGE),
    ],
)
def test_a_value_that_is_not_a_canonical_code_is_parsed(raw, code):
    assert clean.parse(raw, None, 0) == code


def test_words_are_read_through_their_code_table():
    column = pa.array([b"No", b"Yes", b" Yes", b"1"], pa.binary())
    assert clean.column_codes([column], "YesNo")[0].tolist() == [0, 1, 1, clean.NOT_CODE]


def block(rows: list[list[bytes]], lines: list[int], odd: list | None = None) -> Block:
    columns = [pa.array([r[i] for r in rows], pa.binary()) for i in range(len(rows[0]))] if rows else []
    return Block(columns, np.array(lines, dtype=np.int64), odd or [])


def labelled(ncols: int = 86, words: str | None = None) -> FileInfo:
    return FileInfo(Path("t.csv"), "t.csv", ncols=ncols, words=words, delimiter=",")


def test_a_block_keeps_clean_rows_and_rejects_the_others_with_every_reason():
    good = [b"1"] * 86
    bad = list(good)
    bad[2], bad[10], bad[85] = b"9", b"x", b"2"
    odd = [(4, b"1,1", 2)]
    codes, rejects = clean.check(block([good, bad, [b""] * 86], [2, 3, 5], odd), labelled())
    assert codes.shape == (1, 86)
    reason = (
        "MGEMOMV (column 3): 9 is outside its domain 1-6; MRELSA (column 11): 'x' is not an integer; "
        "CARAVAN (column 86): 2 is outside its domain 0-1"
    )
    assert rejects == [
        (3, b",".join(bad), reason, "MGEMOMV: outside its domain"),
        (4, b"1,1", "expected 86 fields, found 2", "wrong number of fields"),
    ]


def test_a_named_csv_target_must_be_one_of_its_words():
    row = [b"1"] * 85 + [b"1"]
    _, rejects = clean.check(block([row], [2]), labelled(words="YesNo"))
    assert rejects[0][2:] == ("CARAVAN (column 86): '1' is not No or Yes", "CARAVAN: not No/Yes")


def test_clean_rows_are_rendered_with_the_decoded_columns_as_labels():
    codes = np.ones((1, 86), dtype=np.int64)
    codes[0, 0], codes[0, 4] = 24, 10
    batch = clean.render(codes)
    assert batch.schema.names == list(rules.CLEAN_NAMES)
    assert batch.column(0).to_pylist() == ["Young, low educated"]
    assert batch.column(4).to_pylist() == ["Farmers"]
    assert batch.column(1).to_pylist() == [1]


def test_rows_get_the_line_numbers_the_rows_kept_aside_do_not_take():
    assert line_numbers(2, 4, taken=[3, 6, 1]).tolist() == [2, 4, 5, 7]


def info_for(tmp_path: Path, name: str, content: bytes) -> FileInfo:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return sniff(FileInfo(path, name))


ROW = ",".join(["1"] * 86)
NUMBERED, NAMED = ",".join(map(str, range(86))), ",".join([*rules.CODES[:85], "Purchase"])


@pytest.mark.parametrize("bom", [b"", BOM], ids=["plain", "bom"])
@pytest.mark.parametrize(
    ("name", "content", "role", "layout", "header"),
    [
        ("ticdata2000.txt", ("\t".join(["1"] * 86) + "\n").encode(), LABELLED, "uci", None),
        ("ticeval2000.txt", ("\t".join(["1"] * 85) + "\r\n").encode(), EVAL, "uci", None),
        ("tictgts2000.txt", b"0\n1\n", TARGETS, "seed", "numbered?"),
        ("train.csv", f"{NUMBERED}\n{ROW}\n".encode(), LABELLED, "seed", "numbered"),
        ("Caravan.csv", f"{NAMED}\n{ROW[:-1]}Yes\n".encode(), LABELLED, "named", "named"),
        ("gt.csv", b"0\n1\n0\n", TARGETS, "seed", "numbered?"),
        ("whatever.dat", (ROW + "  \n" + ROW + "\n").encode(), LABELLED, "csv", None),
        ("dictionary.txt", dictionary_txt(), DICTIONARY, "dictionary", None),
        ("renamed.csv", col_info_csv(), DICTIONARY, "dictionary", None),
    ],
)  # fmt: skip
def test_files_are_recognised_by_content_with_or_without_a_bom(
    tmp_path, name, content, role, layout, header, bom
):
    info = info_for(tmp_path, name, bom + content)
    assert (info.role, info.layout, info.header, info.bom) == (role, layout, header, bool(bom))


def test_a_bad_first_row_does_not_hide_the_file_shape(tmp_path):
    rows = [("\t".join(["1"] * 84)).encode()] + [("\t".join(["1"] * 86)).encode()] * 5
    info = info_for(tmp_path, "ticdata2000.txt", b"\n".join(rows) + b"\n")
    assert (info.role, info.ncols) == (LABELLED, 86)


def test_an_unrecognised_header_with_a_bom_shows_no_misread_bytes(tmp_path):
    with pytest.raises(EtlError) as error:
        info_for(tmp_path, "people.csv", BOM + b"name,age,city\nann,3,x\n")
    assert "unrecognised first line 'name,age,city'" in str(error.value)
    assert "\u00ef" not in str(error.value)


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
    headers = {t.name: (t.header, t.header_lines) for _, t in plan.pairs}
    assert headers == {
        "a/gt.csv": ("numbered", 1),
        "b/tictgts2000.txt": (None, 0),
        "c/my_targets.txt": (None, 0),
    }


@pytest.mark.parametrize(
    "content", [dictionary_txt(), col_info_csv()], ids=["dictionary.txt", "col_info.csv"]
)
def test_the_shipped_dictionaries_match_the_rules(tmp_path, content):
    check_dictionary(info_for(tmp_path, "dict", content))


def test_a_dictionary_missing_a_column_is_refused(tmp_path):
    text = dictionary_txt().replace(b"\r\n86 CARAVAN", b"\r\nCARAVAN")
    with pytest.raises(EtlError, match="column 86 is missing, expected CARAVAN"):
        check_dictionary(info_for(tmp_path, "dictionary.txt", text))


def test_part_files_are_named_after_the_host_only_with_several_hosts():
    assert output_names("algo-1", ["algo-1"])["full_data"] == "full_data.csv"
    assert output_names(None, [])["report"] == "report.json"
    assert output_names("algo-2", ["algo-1", "algo-2"]) == {
        "full_data": "full_data-algo-2.csv",
        "rejects": "rejects-algo-2.csv",
        "report": "report-algo-2.json",
    }
