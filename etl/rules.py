"""The cleaning rules, as data: the one module to edit to clean your data differently (docs/etl.md).
COLUMN_TABLE lists the columns in file order, two a line: the raw files' code, the clean name in
full_data.csv, the domain (a code table's name or lo-hi). The last column is the target."""

from typing import NamedTuple

COLUMN_TABLE = """
MOSTYPE zip_agg_customer_subtype L0               MAANTHUI zip_agg_number_of_houses 1-10
MGEMOMV zip_agg_avg_size_household 1-6            MGEMLEEF zip_agg_avg_age L1
MOSHOOFD zip_agg_customer_main_type L2            MGODRK zip_agg_roman_catholic L3
MGODPR zip_agg_protestant L3                      MGODOV zip_agg_other_religion L3
MGODGE zip_agg_no_religion L3                     MRELGE zip_agg_married L3
MRELSA zip_agg_living_together L3                 MRELOV zip_agg_other_relation L3
MFALLEEN zip_agg_singles L3                       MFGEKIND zip_agg_household_without_children L3
MFWEKIND zip_agg_household_with_children L3       MOPLHOOG zip_agg_high_level_education L3
MOPLMIDD zip_agg_medium_level_education L3        MOPLLAAG zip_agg_lower_level_education L3
MBERHOOG zip_agg_high_status L3                   MBERZELF zip_agg_entrepreneur L3
MBERBOER zip_agg_farmer L3                        MBERMIDD zip_agg_middle_management L3
MBERARBG zip_agg_skilled_labourers L3             MBERARBO zip_agg_unskilled_labourers L3
MSKA zip_agg_social_class_a L3                    MSKB1 zip_agg_social_class_b1 L3
MSKB2 zip_agg_social_class_b2 L3                  MSKC zip_agg_social_class_c L3
MSKD zip_agg_social_class_d L3                    MHHUUR zip_agg_rented_house L3
MHKOOP zip_agg_home_owners L3                     MAUT1 zip_agg_1_car L3
MAUT2 zip_agg_2_cars L3                           MAUT0 zip_agg_no_car L3
MZFONDS zip_agg_national_health_service L3        MZPART zip_agg_private_health_insurance L3
MINKM30 zip_agg_income_<_30.000 L3                MINK3045 zip_agg_income_30-45.000 L3
MINK4575 zip_agg_income_45-75.000 L3              MINK7512 zip_agg_income_75-122.000 L3
MINK123M zip_agg_income_>123.000 L3               MINKGEM zip_agg_average_income 0-9
MKOOPKLA zip_agg_purchasing_power_class 0-9       PWAPART contri_private_third_party_ins L4
PWABEDR contri_third_party_ins_(firms) L4         PWALAND contri_third_party_ins_(agriculture) L4
PPERSAUT contri_car_policies L4                   PBESAUT contri_delivery_van_policies L4
PMOTSCO contri_motorcycle/scooter_policies L4     PVRAAUT contri_lorry_policies L4
PAANHANG contri_trailer_policies L4               PTRACTOR contri_tractor_policies L4
PWERKT contri_agricultural_machines_policies L4   PBROM contri_moped_policies L4
PLEVEN contri_life_ins L4                         PPERSONG contri_private_accident_ins_policies L4
PGEZONG contri_family_accidents_ins_policies L4   PWAOREG contri_disability_ins_policies L4
PBRAND contri_fire_policies L4                    PZEILPL contri_surfboard_policies L4
PPLEZIER contri_boat_policies L4                  PFIETS contri_bicycle_policies L4
PINBOED contri_property_ins_policies L4           PBYSTAND contri_ss_ins_policies L4
AWAPART nbr_private_third_party_ins 0-99          AWABEDR nbr_third_party_ins_(firms) 0-99
AWALAND nbr_third_party_ins_(agriculture) 0-99    APERSAUT nbr_car_policies 0-99
ABESAUT nbr_delivery_van_policies 0-99            AMOTSCO nbr_motorcycle/scooter_policies 0-99
AVRAAUT nbr_lorry_policies 0-99                   AAANHANG nbr_trailer_policies 0-99
ATRACTOR nbr_tractor_policies 0-99                AWERKT nbr_agricultural_machines_policies 0-99
ABROM nbr_moped_policies 0-99                     ALEVEN nbr_life_ins 0-99
APERSONG nbr_private_accident_ins_policies 0-99   AGEZONG nbr_family_accidents_ins_policies 0-99
AWAOREG nbr_disability_ins_policies 0-99          ABRAND nbr_fire_policies 0-99
AZEILPL nbr_surfboard_policies 0-99               APLEZIER nbr_boat_policies 0-99
AFIETS nbr_bicycle_policies 0-99                  AINBOED nbr_property_ins_policies 0-99
ABYSTAND nbr_ss_ins_policies 0-99                 CARAVAN nbr_mobile_home_policies 0-1
"""

CODE_TABLES = {  # name: (first code, the labels of it and the following codes)
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
DECODED = ("MOSTYPE", "MOSHOOFD")  # written as their code table's labels
TARGET_WORDS = {"PURCHASE": "YesNo"}  # Caravan.csv's "Purchase" column: No/Yes for CARAVAN's 0/1


class Column(NamedTuple):
    nr: int  # from 1
    code: str
    name: str  # the clean name
    domain: str  # a code table's name or lo-hi
    lo: int
    hi: int
    labels: tuple[str, ...] | None  # written for lo..hi when the column is decoded


def code_table(name: str) -> tuple[int, tuple[str, ...]]:
    return CODE_TABLES[name][0], tuple(CODE_TABLES[name][1].split("|"))


def column(nr: int, code: str, name: str, domain: str) -> Column:
    lo, labels = code_table(domain) if domain in CODE_TABLES else (int(domain.split("-")[0]), ())
    hi = lo + len(labels) - 1 if labels else int(domain.split("-")[1])
    if code in DECODED and not labels:
        raise ValueError(f"{code} is in DECODED but its domain {domain} is not a code table")
    return Column(nr, code, name, domain, lo, hi, labels if code in DECODED else None)


_FIELDS = COLUMN_TABLE.split()
COLUMNS = tuple(column(i // 3 + 1, *_FIELDS[i : i + 3]) for i in range(0, len(_FIELDS), 3))
CODES, CLEAN_NAMES = tuple(c.code for c in COLUMNS), tuple(c.name for c in COLUMNS)
N_COLUMNS, N_FEATURES = len(COLUMNS), len(COLUMNS) - 1  # the last column is the target
