"""The pure pieces of the ETL on in-memory data: values, rows, blocks, files, pairing (the COIL example)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from coilgen.dictionary import CODES, COIL, col_info_csv, dictionary_txt
from etl import clean
from etl.examples.coil2000.layout import DICTIONARY, EVAL, LABELLED, TARGETS, check_dictionary, plan, sniff
from etl.outputs import output_names
from etl.read import BOM, Block, EtlError, FileInfo, line_numbers


def test_the_coil_schema_gives_every_column_its_domain_and_the_decoded_ones_their_labels():
    by_name = {f.name: f for f in COIL.fields}
    assert (len(COIL.fields), COIL.title) == (86, "COIL 2000")
    assert by_name["zip_agg_customer_subtype"].categories.to_pylist() == list(range(1, 42))
    assert (
        by_name["zip_agg_number_of_houses"].c["minimum"],
        by_name["zip_agg_number_of_houses"].c["maximum"],
    ) == (1, 10)
    assert by_name["zip_agg_customer_main_type"].labels[-1].as_py() == "Farmers"
    assert [f.name for f in COIL.fields if f.labels is not None] == [
        "zip_agg_customer_subtype",
        "zip_agg_customer_main_type",
    ]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [(b" 3 ", clean.OK), (b"03", clean.OK), (b'"3"', clean.OK), (b"+1", clean.OK), (b"-1", clean.BELOW),
     (b"", clean.MISSING), (b"x", clean.TYPE), (b"1_0", clean.TYPE), (b"3.5", clean.TYPE),
     (b"1" * 5000, clean.TYPE)],
)  # fmt: skip
def test_a_value_that_is_not_a_canonical_integer_is_still_read_or_flagged(raw, problem):
    field = COIL.fields[1]  # zip_agg_number_of_houses: 1-10
    values, problems = clean.convert(field, pa.array([raw], pa.binary()))
    clean.constrain(field, values, problems, ranged=False)
    assert problems.tolist() == [problem]


def block(rows: list[list[bytes]], lines: list[int], odd: list | None = None) -> Block:
    columns = [pa.array([r[i] for r in rows], pa.binary()) for i in range(len(rows[0]))] if rows else []
    return Block(columns, np.array(lines, dtype=np.int64), odd or [])


def labelled(ncols: int = 86) -> FileInfo:
    return FileInfo(Path("t.csv"), "t.csv", ncols=ncols, delimiter=",", columns=list(range(86)))


def test_a_block_keeps_clean_rows_and_rejects_the_others_with_every_reason():
    good = [b"1"] * 86
    bad = list(good)
    bad[2], bad[10], bad[85] = b"9", b"x", b"2"
    odd = [(4, b"1,1", 2)]
    batch, rejects = clean.check(COIL, block([good, bad], [2, 3], odd), labelled(), {})
    assert batch.num_rows == 1
    reason = (
        "zip_agg_avg_size_household (column 3): '9' is above its maximum 6; "
        "zip_agg_living_together (column 11): 'x' is not an integer; "
        "nbr_mobile_home_policies (column 86): '2' is above its maximum 1"
    )
    assert rejects == [
        (3, b",".join(bad), reason, "zip_agg_avg_size_household: above its maximum"),
        (4, b"1,1", "expected 86 fields, found 2", "wrong number of fields"),
    ]


def test_clean_rows_are_written_with_the_categories_labels():
    row = [b"1"] * 86
    row[0], row[4] = b"24", b"10"
    batch, _ = clean.check(COIL, block([row], [2]), labelled(), {})
    assert batch.schema.names == COIL.names
    assert batch.column(0).to_pylist() == ["Young, low educated"]
    assert batch.column(4).to_pylist() == ["Farmers"]
    assert batch.column(1).to_pylist() == [1]


def test_rows_get_the_line_numbers_the_rows_kept_aside_do_not_take():
    assert line_numbers(2, 4, taken=[3, 6, 1]).tolist() == [2, 4, 5, 7]


def info_for(tmp_path: Path, name: str, content: bytes) -> FileInfo:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return sniff(FileInfo(path, name), COIL)


ROW = ",".join(["1"] * 86)
NUMBERED, NAMED = ",".join(map(str, range(86))), ",".join([*CODES[:85], "Purchase"])


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
    assert (info.role, info.layout, info.more.get("header"), info.bom) == (role, layout, header, bool(bom))


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
    jobs = plan(infos, COIL, hosts=1)
    assert [j.info.name for j in jobs if j.role == LABELLED] == ["z.csv"]
    pairs = [(j.info.name, j.companion.name) for j in jobs if j.companion]
    assert pairs == [
        ("a/test.csv", "a/gt.csv"),
        ("b/ticeval2000.txt", "b/tictgts2000.txt"),
        ("c/my_eval.txt", "c/my_targets.txt"),
    ]
    headers = {
        j.companion.name: (j.companion.more["header"], j.companion.header_lines) for j in jobs if j.companion
    }
    assert headers == {
        "a/gt.csv": ("numbered", 1),
        "b/tictgts2000.txt": (None, 0),
        "c/my_targets.txt": (None, 0),
    }


@pytest.mark.parametrize(
    "content", [dictionary_txt(), col_info_csv()], ids=["dictionary.txt", "col_info.csv"]
)
def test_the_shipped_dictionaries_match_the_schema(tmp_path, content):
    list(check_dictionary(info_for(tmp_path, "dict", content), COIL))


def test_a_dictionary_missing_a_column_is_refused(tmp_path):
    text = dictionary_txt().replace(b"\r\n86 CARAVAN", b"\r\nCARAVAN")
    with pytest.raises(EtlError, match="column 86 is missing, expected CARAVAN"):
        list(check_dictionary(info_for(tmp_path, "dictionary.txt", text), COIL))


def test_part_files_are_named_after_the_host_only_with_several_hosts():
    assert output_names("algo-1", ["algo-1"])["full_data"] == "full_data.csv"
    assert output_names(None, [])["report"] == "report.json"
    assert output_names("algo-2", ["algo-1", "algo-2"]) == {
        "full_data": "full_data-algo-2.csv",
        "rejects": "rejects-algo-2.csv",
        "report": "report-algo-2.json",
    }
