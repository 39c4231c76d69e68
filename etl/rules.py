"""The cleaning rules, as data: the one module to edit to clean your data differently (docs/etl.md).

- ``COLUMN_TABLE``: a line a column, in file order: number, the code the raw files use, the clean name
  in ``full_data.csv``, the domain: a code table's name (its codes) or a range ``lo-hi``. The last
  column is the target.
- ``CODE_TABLES``: name -> (first code, the labels of it and the following codes, ``|``-separated).
- ``DECODED``: the columns ``full_data.csv`` writes as their code table's label instead of the code.
- ``TARGET_WORDS``: a header name for the target column, and the code table its words are read through.
"""

from __future__ import annotations

from typing import NamedTuple

COLUMN_TABLE = """1 MOSTYPE zip_agg_customer_subtype L0
2 MAANTHUI zip_agg_number_of_houses 1-10
3 MGEMOMV zip_agg_avg_size_household 1-6
4 MGEMLEEF zip_agg_avg_age L1
5 MOSHOOFD zip_agg_customer_main_type L2
6 MGODRK zip_agg_roman_catholic L3
7 MGODPR zip_agg_protestant L3
8 MGODOV zip_agg_other_religion L3
9 MGODGE zip_agg_no_religion L3
10 MRELGE zip_agg_married L3
11 MRELSA zip_agg_living_together L3
12 MRELOV zip_agg_other_relation L3
13 MFALLEEN zip_agg_singles L3
14 MFGEKIND zip_agg_household_without_children L3
15 MFWEKIND zip_agg_household_with_children L3
16 MOPLHOOG zip_agg_high_level_education L3
17 MOPLMIDD zip_agg_medium_level_education L3
18 MOPLLAAG zip_agg_lower_level_education L3
19 MBERHOOG zip_agg_high_status L3
20 MBERZELF zip_agg_entrepreneur L3
21 MBERBOER zip_agg_farmer L3
22 MBERMIDD zip_agg_middle_management L3
23 MBERARBG zip_agg_skilled_labourers L3
24 MBERARBO zip_agg_unskilled_labourers L3
25 MSKA zip_agg_social_class_a L3
26 MSKB1 zip_agg_social_class_b1 L3
27 MSKB2 zip_agg_social_class_b2 L3
28 MSKC zip_agg_social_class_c L3
29 MSKD zip_agg_social_class_d L3
30 MHHUUR zip_agg_rented_house L3
31 MHKOOP zip_agg_home_owners L3
32 MAUT1 zip_agg_1_car L3
33 MAUT2 zip_agg_2_cars L3
34 MAUT0 zip_agg_no_car L3
35 MZFONDS zip_agg_national_health_service L3
36 MZPART zip_agg_private_health_insurance L3
37 MINKM30 zip_agg_income_<_30.000 L3
38 MINK3045 zip_agg_income_30-45.000 L3
39 MINK4575 zip_agg_income_45-75.000 L3
40 MINK7512 zip_agg_income_75-122.000 L3
41 MINK123M zip_agg_income_>123.000 L3
42 MINKGEM zip_agg_average_income 0-9
43 MKOOPKLA zip_agg_purchasing_power_class 0-9
44 PWAPART contri_private_third_party_ins L4
45 PWABEDR contri_third_party_ins_(firms) L4
46 PWALAND contri_third_party_ins_(agriculture) L4
47 PPERSAUT contri_car_policies L4
48 PBESAUT contri_delivery_van_policies L4
49 PMOTSCO contri_motorcycle/scooter_policies L4
50 PVRAAUT contri_lorry_policies L4
51 PAANHANG contri_trailer_policies L4
52 PTRACTOR contri_tractor_policies L4
53 PWERKT contri_agricultural_machines_policies L4
54 PBROM contri_moped_policies L4
55 PLEVEN contri_life_ins L4
56 PPERSONG contri_private_accident_ins_policies L4
57 PGEZONG contri_family_accidents_ins_policies L4
58 PWAOREG contri_disability_ins_policies L4
59 PBRAND contri_fire_policies L4
60 PZEILPL contri_surfboard_policies L4
61 PPLEZIER contri_boat_policies L4
62 PFIETS contri_bicycle_policies L4
63 PINBOED contri_property_ins_policies L4
64 PBYSTAND contri_ss_ins_policies L4
65 AWAPART nbr_private_third_party_ins 0-99
66 AWABEDR nbr_third_party_ins_(firms) 0-99
67 AWALAND nbr_third_party_ins_(agriculture) 0-99
68 APERSAUT nbr_car_policies 0-99
69 ABESAUT nbr_delivery_van_policies 0-99
70 AMOTSCO nbr_motorcycle/scooter_policies 0-99
71 AVRAAUT nbr_lorry_policies 0-99
72 AAANHANG nbr_trailer_policies 0-99
73 ATRACTOR nbr_tractor_policies 0-99
74 AWERKT nbr_agricultural_machines_policies 0-99
75 ABROM nbr_moped_policies 0-99
76 ALEVEN nbr_life_ins 0-99
77 APERSONG nbr_private_accident_ins_policies 0-99
78 AGEZONG nbr_family_accidents_ins_policies 0-99
79 AWAOREG nbr_disability_ins_policies 0-99
80 ABRAND nbr_fire_policies 0-99
81 AZEILPL nbr_surfboard_policies 0-99
82 APLEZIER nbr_boat_policies 0-99
83 AFIETS nbr_bicycle_policies 0-99
84 AINBOED nbr_property_ins_policies 0-99
85 ABYSTAND nbr_ss_ins_policies 0-99
86 CARAVAN nbr_mobile_home_policies 0-1
"""

CODE_TABLES = {
    "L0": (
        1,
        "High Income, expensive child|Very Important Provincials|High status seniors|"
        "Affluent senior apartments|Mixed seniors|Career and childcare|Dinki's (double income no kids)|"
        "Middle class families|Modern, complete families|Stable family|Family starters|"
        "Affluent young families|Young all american family|Junior cosmopolitan|Senior cosmopolitans|"
        "Students in apartments|Fresh masters in the city|Single youth|Suburban youth|Etnically diverse|"
        "Young urban have-nots|Mixed apartment dwellers|Young and rising|Young, low educated|"
        "Young seniors in the city|Own home elderly|Seniors in apartments|Residential elderly|"
        "Porchless seniors: no front yard|Religious elderly singles|Low income catholics|Mixed seniors|"
        "Lower class large families|Large family, employed child|Village families|"
        "Couples with teens 'Married with children'|Mixed small town dwellers|Traditional families|"
        "Large religous families|Large family farms|Mixed rurals",
    ),
    "L1": (1, "20-30 years|30-40 years|40-50 years|50-60 years|60-70 years|70-80 years"),
    "L2": (
        1,
        "Successful hedonists|Driven Growers|Average Family|Career Loners|Living well|Cruising Seniors|"
        "Retired and Religeous|Family with grown ups|Conservative families|Farmers",
    ),
    "L3": (0, "0%|1-10%|11-23%|24-36%|37-49%|50-62%|63-75%|76-88%|89-99%|100%"),
    "L4": (0, "0|1-49|50-99|100-199|200-499|500-999|1000-4999|5000-9999|10000-19999|20000+"),
    "YesNo": (0, "No|Yes"),
}
DECODED = ("MOSTYPE", "MOSHOOFD")
TARGET_WORDS = {"PURCHASE": "YesNo"}  # Caravan.csv's "Purchase" column: No/Yes for CARAVAN's 0/1


class Column(NamedTuple):
    nr: int
    code: str
    name: str  # the clean name
    domain: str  # a code table's name or lo-hi
    lo: int
    hi: int
    labels: tuple[str, ...] | None  # written for lo..hi when the column is decoded


def code_table(name: str) -> tuple[int, tuple[str, ...]]:
    return CODE_TABLES[name][0], tuple(CODE_TABLES[name][1].split("|"))


def column(line: str) -> Column:
    nr, code, name, domain = line.split()
    lo, labels = code_table(domain) if domain in CODE_TABLES else (int(domain.split("-")[0]), ())
    hi = lo + len(labels) - 1 if labels else int(domain.split("-")[1])
    if code in DECODED and not labels:
        raise ValueError(f"{code} is in DECODED but its domain {domain} is not a code table")
    return Column(int(nr), code, name, domain, lo, hi, labels if code in DECODED else None)


COLUMNS = tuple(column(line) for line in COLUMN_TABLE.strip().splitlines())
CODES, CLEAN_NAMES = tuple(c.code for c in COLUMNS), tuple(c.name for c in COLUMNS)
N_COLUMNS, N_FEATURES = len(COLUMNS), len(COLUMNS) - 1  # the last column is the target
