"""Static tables for the synthetic-hospital generator (``gateway.synth``).

Everything here is plain data: regions, names, departments, diagnoses, drugs, exams and
labs, with realistic Chinese names and prices. Codes that have a national standard use
it where the standard is public (GB/T 2260 regions, GB/T 2261.1 sex, GB/T 3304 ethnicity,
NHSA med_chrgitm_type / chrgitm_lv / insutype, ICD-10 China clinical-edition style
diagnosis codes, 全国医疗服务价格项目规范 codes for registration and consultation fees);
hospital item codes are local and invented. National drug list codes are synthetic but
have the real 23-character shape (``X`` + ATC level 4 + generic/form/spec/maker parts).
"""

from __future__ import annotations

import zlib
from typing import NamedTuple


# --------------------------------------------------------------------------- regions
class Region(NamedTuple):
    code: str  # GB/T 2260 county-level code
    province: str
    city: str  # "" for the four municipalities (the province is the city)
    district: str
    since: int  # first birth year python-stdnum accepts for this code (its county history)


# Real county-level codes. ``since`` is the first birth year for which
# ``stdnum.cn.ric.validate`` accepts an ID with this region (python-stdnum checks the
# county existed in the birth year); tests/test_synth.py re-checks every row.
REGIONS: tuple[Region, ...] = (
    # 北京市
    Region("110101", "北京市", "", "东城区", 1930),
    Region("110102", "北京市", "", "西城区", 1930),
    Region("110105", "北京市", "", "朝阳区", 1930),
    Region("110106", "北京市", "", "丰台区", 1930),
    Region("110108", "北京市", "", "海淀区", 1930),
    # 上海市
    Region("310101", "上海市", "", "黄浦区", 1930),
    Region("310104", "上海市", "", "徐汇区", 1930),
    Region("310105", "上海市", "", "长宁区", 1930),
    Region("310106", "上海市", "", "静安区", 1930),
    Region("310110", "上海市", "", "杨浦区", 1930),
    # 天津市
    Region("120101", "天津市", "", "和平区", 1930),
    Region("120103", "天津市", "", "河西区", 1930),
    Region("120104", "天津市", "", "南开区", 1930),
    # 广东省
    Region("440104", "广东省", "广州市", "越秀区", 1983),
    Region("440106", "广东省", "广州市", "天河区", 1985),
    Region("440304", "广东省", "深圳市", "福田区", 1983),
    Region("440305", "广东省", "深圳市", "南山区", 1983),
    # 四川省
    Region("510107", "四川省", "成都市", "武侯区", 1990),
    Region("510105", "四川省", "成都市", "青羊区", 1990),
    Region("510121", "四川省", "成都市", "金堂县", 1930),
    # 浙江省
    Region("330106", "浙江省", "杭州市", "西湖区", 1983),
    Region("330102", "浙江省", "杭州市", "上城区", 1983),
    Region("330122", "浙江省", "杭州市", "桐庐县", 1930),
    # 江苏省
    Region("320102", "江苏省", "南京市", "玄武区", 1983),
    Region("320106", "江苏省", "南京市", "鼓楼区", 1983),
    # 湖北省
    Region("420106", "湖北省", "武汉市", "武昌区", 1983),
    Region("420111", "湖北省", "武汉市", "洪山区", 1983),
    # 陕西省
    Region("610113", "陕西省", "西安市", "雁塔区", 1983),
    Region("610103", "陕西省", "西安市", "碑林区", 1983),
    # 云南省
    Region("530102", "云南省", "昆明市", "五华区", 1983),
    Region("530124", "云南省", "昆明市", "富民县", 1930),
    # 山东省 / 河南省 / 湖南省 / 福建省 / 辽宁省 / 河北省
    Region("370102", "山东省", "济南市", "历下区", 1983),
    Region("410105", "河南省", "郑州市", "金水区", 1983),
    Region("430121", "湖南省", "长沙市", "长沙县", 1930),
    Region("350203", "福建省", "厦门市", "思明区", 1983),
    Region("350121", "福建省", "福州市", "闽侯县", 1930),
    Region("210224", "辽宁省", "大连市", "长海县", 1930),
    Region("130102", "河北省", "石家庄市", "长安区", 1983),
    # 山西省 / 安徽省 / 江西省 / 甘肃省 / 宁夏 / 内蒙古
    Region("140121", "山西省", "太原市", "清徐县", 1930),
    Region("340121", "安徽省", "合肥市", "长丰县", 1930),
    Region("360121", "江西省", "南昌市", "南昌县", 1930),
    Region("620121", "甘肃省", "兰州市", "永登县", 1930),
    Region("640121", "宁夏回族自治区", "银川市", "永宁县", 1930),
    Region("150121", "内蒙古自治区", "呼和浩特市", "土默特左旗", 1930),
)

REGION_BY_CODE = {r.code: r for r in REGIONS}


def city_of(region: Region) -> str:
    return region.city or region.province


# Hospitals are placed in cities whose district codes validate for every birth year,
# so local patients of any age can carry a local ID number.
HOSPITAL_CITIES: tuple[str, ...] = ("北京市", "上海市", "天津市")

ROADS = (
    "人民路", "解放路", "建设路", "中山路", "和平路", "新华路", "胜利路", "文化路", "青年路",
    "友谊路", "光明街", "朝阳路", "幸福路", "长江路", "黄河路", "民主路", "工农路", "育才路",
    "府前街", "东风路", "西大街", "南大街", "北大街", "滨河路", "迎宾路", "花园路",
)
COMPOUNDS = (
    "阳光小区", "幸福家园", "翠苑", "金色家园", "华府", "花园新村", "锦绣苑", "和谐家园",
    "紫荆园", "丽景苑", "枫林小区", "望京新城", "绿地小区", "康乐里", "安居苑",
)

# ------------------------------------------------------------------------------ names
# Common surnames with rough relative frequencies (percent of population).
SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.1), ("李", 7.0), ("张", 6.8), ("刘", 5.4), ("陈", 4.5), ("杨", 3.1), ("黄", 2.3),
    ("赵", 2.2), ("吴", 2.0), ("周", 1.9), ("徐", 1.5), ("孙", 1.5), ("马", 1.3), ("朱", 1.3),
    ("胡", 1.2), ("郭", 1.2), ("何", 1.1), ("高", 1.1), ("林", 1.1), ("罗", 1.0), ("郑", 1.0),
    ("梁", 0.9), ("谢", 0.8), ("宋", 0.8), ("唐", 0.8), ("许", 0.7), ("韩", 0.7), ("冯", 0.7),
    ("邓", 0.7), ("曹", 0.7), ("彭", 0.6), ("曾", 0.6), ("肖", 0.6), ("田", 0.6), ("董", 0.5),
    ("袁", 0.5), ("潘", 0.5), ("于", 0.5), ("蒋", 0.5), ("蔡", 0.5), ("余", 0.5), ("杜", 0.5),
    ("叶", 0.4), ("程", 0.4), ("苏", 0.4), ("魏", 0.4), ("吕", 0.4), ("丁", 0.4), ("任", 0.4),
    ("沈", 0.4), ("姚", 0.3), ("卢", 0.3), ("姜", 0.3), ("崔", 0.3), ("钟", 0.3), ("谭", 0.3),
    ("欧阳", 0.05), ("司马", 0.01), ("诸葛", 0.01),
)
GIVEN_MALE = tuple(
    "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林阳建国东文志海峰永成"
    "子轩博晨睿泽宏庆亮振松嘉诚鸿家德清"
)
GIVEN_FEMALE = tuple(
    "芳娜敏静丽艳娟霞秀英玲桂兰燕萍红梅琳雪婷颖慧洁倩佳欣悦怡雨晴思涵萱诗琪瑶月莉凤玉珍"
    "淑惠雅宁彤妍丹"
)

# GB/T 3304 ethnicity: mostly 01 汉族; the rest weighted roughly by population.
ETHNICITIES: tuple[tuple[str, float], ...] = (
    ("01", 91.0), ("08", 1.4), ("03", 0.8), ("11", 0.8), ("05", 0.8), ("06", 0.7), ("04", 0.5),
    ("07", 0.6), ("15", 0.6), ("02", 0.5), ("10", 0.2), ("14", 0.2), ("12", 0.2), ("13", 0.2),
)

SEX_SYSTEM = "urn:oid:2.16.156.10011.2.3.3.4"
SEX_DISPLAY = {"1": "男性", "2": "女性"}

# --------------------------------------------------------------------------- hospitals
# "{city}{district}" + suffix; city-level names are "{city}" + suffix.
HOSPITAL_SUFFIXES = (
    "第一人民医院", "第二人民医院", "人民医院", "中医医院", "中心医院", "中西医结合医院",
    "第三人民医院", "医院",
)

# Department: (code, name); codes follow 诊疗科目 numbering (03.01 呼吸内科 → "0301").
EMERGENCY_DEPT = "2000"
PEDIATRIC_DEPT = "0700"
DEPARTMENTS: dict[str, str] = {
    "0200": "全科医学科",
    "0301": "呼吸内科",
    "0302": "消化内科",
    "0303": "神经内科",
    "0304": "心血管内科",
    "0307": "内分泌科",
    "0403": "骨科",
    "0404": "泌尿外科",
    "0700": "儿科",
    "1100": "耳鼻咽喉科",
    "1300": "皮肤科",
    "2000": "急诊科",
    "5000": "中医科",
}
DOCTOR_TITLES: tuple[tuple[str, float], ...] = (
    ("主任医师", 0.15), ("副主任医师", 0.25), ("主治医师", 0.4), ("住院医师", 0.2),
)

# ------------------------------------------------------------------------------- fees
# NHSA med_chrgitm_type
FEE_BED, FEE_CONSULT, FEE_EXAM, FEE_LAB, FEE_TREAT = "01", "02", "03", "04", "05"
FEE_MATERIAL, FEE_WESTERN, FEE_HERBAL, FEE_PATENT, FEE_GENERAL = "08", "09", "10", "11", "12"
FEE_REGISTRATION, FEE_OTHER = "13", "14"

# (item_code, national_code, name, unit_price, category, chrgitm_lv)
REGISTRATION_FEE = ("GH0001", "110100001", "挂号费", "1.00", FEE_REGISTRATION, "03")
CONSULTATION_FEES: dict[str, tuple[str, str | None, str, str, str, str]] = {
    "住院医师": ("ZC0001", "110200001", "普通门诊诊查费", "10.00", FEE_CONSULT, "01"),
    "主治医师": ("ZC0001", "110200001", "普通门诊诊查费", "10.00", FEE_CONSULT, "01"),
    "副主任医师": ("ZC0002", "110200002", "副主任医师诊查费", "15.00", FEE_CONSULT, "01"),
    "主任医师": ("ZC0003", "110200003", "主任医师诊查费", "20.00", FEE_CONSULT, "01"),
    "急诊": ("ZC0005", "110200005", "急诊诊查费", "12.00", FEE_CONSULT, "01"),
}
INFUSION_FEE = ("ZL0001", None, "静脉输液(门急诊)", "8.00", FEE_TREAT, "01")
INFUSION_SET_FEE = ("CL0001", None, "一次性使用输液器", "3.50", FEE_MATERIAL, "02")
BLOOD_DRAW_FEE = ("ZL0002", None, "静脉采血", "3.00", FEE_TREAT, "01")

# Frequencies: code → administrations per day.
FREQUENCIES: dict[str, float] = {
    "qd": 1, "bid": 2, "tid": 3, "qid": 4, "qn": 1, "qw": 1 / 7, "prn": 0,
}


# ------------------------------------------------------------------------------ drugs
class Drug(NamedTuple):
    code: str  # hospital drug code
    name: str
    strength: str  # 规格 as printed, e.g. "0.25g"
    form_unit: str  # smallest unit: 片 粒 袋 支 瓶 吸
    pack_size: int  # form units per pack
    pack_unit: str  # 盒 瓶 支 袋
    pack_price: str  # yuan per pack
    dose: str  # dose value per administration
    dose_unit: str
    units_per_dose: float  # form units per administration
    route: str
    frequency: str
    days: tuple[int, int]
    category: str  # 09 西药费 / 11 中成药费
    insurance_class: str  # 01 甲 / 02 乙 / 03 丙
    atc: str | None = None  # for a national list code (western drugs)
    bill_by_unit: bool = False  # bill per form unit (price with four decimals)
    fixed_packs: int | None = None  # prn / topical: dispense this many packs
    solvent: str | None = None  # IV drug: key of the carrier infusion


_FORM_CODES = {"片": "A001", "粒": "A002", "袋": "A003", "支": "A004", "瓶": "A005", "吸": "A006",
               "揿": "A007", "g": "A008"}


def national_drug_code(drug: Drug) -> str | None:
    """A 23-character NHSA-shaped western-drug list code, built from the ATC code."""
    if not drug.atc or drug.category != FEE_WESTERN:
        return None
    atc = drug.atc
    level4 = atc[:5]
    tail = atc[5:7]
    generic = f"A{int(tail) * 10:03d}" if tail.isdigit() else f"A{zlib.crc32(drug.name.encode()) % 1000:03d}"
    form = _FORM_CODES.get(drug.form_unit, "A009")
    spec = f"{zlib.crc32(drug.strength.encode()) % 10000:04d}"
    maker = f"{zlib.crc32(drug.code.encode()) % 100000:05d}"
    return f"X{level4}{generic}{form}{spec}{maker}"


D = Drug
DRUGS: dict[str, Drug] = {
    # anti-infectives
    "AMOX": D("YP00101", "阿莫西林胶囊", "0.25g", "粒", 24, "盒", "12.50", "0.5", "g", 2, "口服", "tid", (5, 7), FEE_WESTERN, "01", "J01CA04"),
    "CEFU": D("YP00102", "头孢呋辛酯片", "0.25g", "片", 12, "盒", "28.60", "0.25", "g", 1, "口服", "bid", (5, 7), FEE_WESTERN, "02", "J01DC02"),
    "AZI": D("YP00103", "阿奇霉素片", "0.25g", "片", 6, "盒", "18.90", "0.5", "g", 2, "口服", "qd", (3, 3), FEE_WESTERN, "01", "J01FA10"),
    "LEVO": D("YP00104", "左氧氟沙星片", "0.5g", "片", 4, "盒", "22.40", "0.5", "g", 1, "口服", "qd", (5, 7), FEE_WESTERN, "02", "J01MA12"),
    "CEFU_IV": D("YP00105", "注射用头孢呋辛钠", "0.75g", "支", 1, "支", "6.85", "1.5", "g", 2, "静脉滴注", "bid", (3, 3), FEE_WESTERN, "01", "J01DC02", solvent="NS100"),
    "NS100": D("YP00106", "0.9%氯化钠注射液", "100ml:0.9g", "袋", 1, "袋", "3.20", "100", "ml", 1, "静脉滴注", "bid", (3, 3), FEE_WESTERN, "01", "B05XA03"),
    # respiratory / ENT
    "LHQW": D("YP00201", "连花清瘟胶囊", "0.35g", "粒", 24, "盒", "19.80", "1.4", "g", 4, "口服", "tid", (3, 5), FEE_PATENT, "02"),
    "PDL": D("YP00202", "蒲地蓝消炎口服液", "10ml", "支", 10, "盒", "29.80", "10", "ml", 1, "口服", "tid", (3, 5), FEE_PATENT, "02"),
    "ACET": D("YP00203", "对乙酰氨基酚片", "0.5g", "片", 12, "盒", "5.80", "0.5", "g", 1, "口服", "prn", (3, 3), FEE_WESTERN, "01", "N02BE01", fixed_packs=1),
    "IBU": D("YP00204", "布洛芬缓释胶囊", "0.3g", "粒", 20, "盒", "15.60", "0.3", "g", 1, "口服", "bid", (3, 5), FEE_WESTERN, "01", "M01AE01"),
    "AMBR": D("YP00205", "盐酸氨溴索片", "30mg", "片", 20, "盒", "9.60", "30", "mg", 1, "口服", "tid", (5, 7), FEE_WESTERN, "01", "R05CB06", bill_by_unit=True),
    "DEXT": D("YP00206", "氢溴酸右美沙芬片", "15mg", "片", 24, "盒", "11.20", "15", "mg", 1, "口服", "tid", (3, 5), FEE_WESTERN, "02", "R05DA09"),
    "MONT": D("YP00207", "孟鲁司特钠片", "10mg", "片", 5, "盒", "38.50", "10", "mg", 1, "口服", "qn", (14, 28), FEE_WESTERN, "02", "R03DC03"),
    "BUD": D("YP00208", "布地奈德福莫特罗吸入粉雾剂", "160μg/4.5μg×60吸", "吸", 60, "支", "298.00", "1", "吸", 1, "吸入", "bid", (30, 30), FEE_WESTERN, "02", "R03AK07"),
    "LORA": D("YP00209", "氯雷他定片", "10mg", "片", 6, "盒", "16.30", "10", "mg", 1, "口服", "qd", (7, 14), FEE_WESTERN, "02", "R06AX13"),
    "MOMET": D("YP00210", "糠酸莫米松鼻喷雾剂", "50μg×60揿", "揿", 60, "支", "68.00", "200", "μg", 4, "鼻腔喷入", "qd", (14, 30), FEE_WESTERN, "02", "R01AD09"),
    # digestive
    "OME": D("YP00301", "奥美拉唑肠溶胶囊", "20mg", "粒", 14, "盒", "12.80", "20", "mg", 1, "口服", "bid", (14, 28), FEE_WESTERN, "01", "A02BC01", bill_by_unit=True),
    "MOSA": D("YP00302", "枸橼酸莫沙必利片", "5mg", "片", 24, "盒", "26.50", "5", "mg", 1, "口服", "tid", (14, 14), FEE_WESTERN, "02", "A03FA"),
    "ALMG": D("YP00303", "铝碳酸镁咀嚼片", "0.5g", "片", 20, "盒", "18.00", "1.0", "g", 2, "口服", "tid", (7, 14), FEE_WESTERN, "02", "A02AD04"),
    "SMEC": D("YP00304", "蒙脱石散", "3g", "袋", 10, "盒", "10.50", "3", "g", 1, "口服", "tid", (3, 3), FEE_WESTERN, "01", "A07BC05"),
    "ORS": D("YP00305", "口服补液盐散(III)", "5.125g", "袋", 6, "盒", "6.00", "5.125", "g", 1, "口服", "tid", (2, 2), FEE_WESTERN, "01", "A07CA"),
    "BIFI": D("YP00306", "双歧杆菌三联活菌胶囊", "210mg", "粒", 24, "盒", "21.80", "420", "mg", 2, "口服", "bid", (5, 7), FEE_WESTERN, "02", "A07FA"),
    "LACTU": D("YP00307", "乳果糖口服溶液", "15ml", "袋", 6, "盒", "24.60", "15", "ml", 1, "口服", "qd", (7, 14), FEE_WESTERN, "02", "A06AD11"),
    # cardiovascular / metabolic
    "AMLO": D("YP00401", "苯磺酸氨氯地平片", "5mg", "片", 7, "盒", "8.70", "5", "mg", 1, "口服", "qd", (28, 28), FEE_WESTERN, "01", "C08CA01"),
    "VALS": D("YP00402", "缬沙坦胶囊", "80mg", "粒", 7, "盒", "17.40", "80", "mg", 1, "口服", "qd", (28, 28), FEE_WESTERN, "02", "C09CA03"),
    "METO": D("YP00403", "酒石酸美托洛尔片", "25mg", "片", 20, "盒", "4.30", "25", "mg", 1, "口服", "bid", (28, 28), FEE_WESTERN, "01", "C07AB02", bill_by_unit=True),
    "ASP": D("YP00404", "阿司匹林肠溶片", "100mg", "片", 30, "盒", "15.20", "100", "mg", 1, "口服", "qd", (28, 30), FEE_WESTERN, "01", "B01AC06"),
    "ATOR": D("YP00405", "阿托伐他汀钙片", "20mg", "片", 7, "盒", "6.90", "20", "mg", 1, "口服", "qn", (28, 28), FEE_WESTERN, "02", "C10AA05"),
    "ROSU": D("YP00406", "瑞舒伐他汀钙片", "10mg", "片", 7, "盒", "5.60", "10", "mg", 1, "口服", "qn", (28, 28), FEE_WESTERN, "02", "C10AA07"),
    "CLOP": D("YP00407", "硫酸氢氯吡格雷片", "75mg", "片", 7, "盒", "12.30", "75", "mg", 1, "口服", "qd", (28, 28), FEE_WESTERN, "02", "B01AC04"),
    "NITRO": D("YP00408", "硝酸甘油片", "0.5mg", "片", 100, "瓶", "9.80", "0.5", "mg", 1, "舌下含服", "prn", (30, 30), FEE_WESTERN, "01", "C01DA02", fixed_packs=1),
    "RIVA": D("YP00409", "利伐沙班片", "10mg", "片", 10, "盒", "49.90", "10", "mg", 1, "口服", "qd", (28, 30), FEE_WESTERN, "02", "B01AF01"),
    "METF": D("YP00410", "盐酸二甲双胍片", "0.5g", "片", 20, "盒", "4.50", "0.5", "g", 1, "口服", "tid", (28, 28), FEE_WESTERN, "01", "A10BA02", bill_by_unit=True),
    "ACAR": D("YP00411", "阿卡波糖片", "50mg", "片", 30, "盒", "18.00", "50", "mg", 1, "口服", "tid", (28, 28), FEE_WESTERN, "02", "A10BF01"),
    "LEVT": D("YP00412", "左甲状腺素钠片", "50μg", "片", 100, "瓶", "25.00", "50", "μg", 1, "口服", "qd", (28, 56), FEE_WESTERN, "01", "H03AA01"),
    # musculoskeletal / neuro / urology / skin
    "CELE": D("YP00501", "塞来昔布胶囊", "0.2g", "粒", 6, "盒", "21.30", "0.2", "g", 1, "口服", "qd", (7, 14), FEE_WESTERN, "02", "M01AH01"),
    "DICL": D("YP00502", "双氯芬酸钠缓释片", "75mg", "片", 10, "盒", "9.90", "75", "mg", 1, "口服", "qd", (5, 7), FEE_WESTERN, "01", "M01AB05"),
    "DICL_GEL": D("YP00503", "双氯芬酸二乙胺乳胶剂", "20g:0.2g", "支", 1, "支", "23.50", "2", "g", 1, "外用", "tid", (7, 14), FEE_WESTERN, "02", "M02AA15", fixed_packs=1),
    "CALC": D("YP00504", "碳酸钙D3片", "600mg", "片", 30, "瓶", "19.90", "600", "mg", 1, "口服", "qd", (30, 30), FEE_WESTERN, "02", "A12AX"),
    "ALEN": D("YP00505", "阿仑膦酸钠片", "70mg", "片", 4, "盒", "36.80", "70", "mg", 1, "口服", "qw", (28, 28), FEE_WESTERN, "02", "M05BA04"),
    "FLUN": D("YP00506", "盐酸氟桂利嗪胶囊", "5mg", "粒", 20, "盒", "8.60", "5", "mg", 1, "口服", "qn", (7, 14), FEE_WESTERN, "02", "N07CA03"),
    "BETA": D("YP00507", "甲磺酸倍他司汀片", "6mg", "片", 30, "盒", "14.70", "12", "mg", 2, "口服", "tid", (5, 7), FEE_WESTERN, "02", "N07CA01"),
    "TAMS": D("YP00508", "盐酸坦索罗辛缓释胶囊", "0.2mg", "粒", 10, "盒", "25.90", "0.2", "mg", 1, "口服", "qn", (14, 28), FEE_WESTERN, "02", "G04CA02"),
    "FINA": D("YP00509", "非那雄胺片", "5mg", "片", 10, "盒", "31.50", "5", "mg", 1, "口服", "qd", (28, 30), FEE_WESTERN, "02", "G04CB01"),
    "ANIS": D("YP00510", "消旋山莨菪碱片", "5mg", "片", 100, "瓶", "6.80", "5", "mg", 1, "口服", "tid", (3, 3), FEE_WESTERN, "01", "A03BA", fixed_packs=1),
    "DESO": D("YP00511", "地奈德乳膏", "0.05%:15g", "支", 1, "支", "16.80", "适量", "g", 1, "外用", "bid", (7, 14), FEE_WESTERN, "02", "D07AB08", fixed_packs=1),
    "CALA": D("YP00512", "炉甘石洗剂", "100ml", "瓶", 1, "瓶", "5.50", "适量", "ml", 1, "外用", "tid", (7, 7), FEE_WESTERN, "01", "D04AX", fixed_packs=1),
    "YNBY": D("YP00513", "云南白药气雾剂", "85g+30g", "瓶", 1, "盒", "49.00", "适量", "g", 1, "外用", "tid", (7, 7), FEE_PATENT, "02", fixed_packs=1),
    # pediatric
    "K_AAHN": D("YP00601", "小儿氨酚黄那敏颗粒", "6g", "袋", 10, "盒", "12.00", "1", "袋", 1, "口服", "tid", (3, 3), FEE_WESTERN, "02", "N02BE51"),
    "K_AMCL": D("YP00602", "阿莫西林克拉维酸钾干混悬剂", "228.5mg", "袋", 12, "盒", "27.40", "228.5", "mg", 1, "口服", "bid", (5, 7), FEE_WESTERN, "02", "J01CR02"),
    "K_IBU": D("YP00603", "布洛芬混悬液", "100ml:2g", "瓶", 1, "瓶", "18.50", "5", "ml", 1, "口服", "prn", (3, 3), FEE_WESTERN, "01", "M01AE01", fixed_packs=1),
    "K_DQ": D("YP00604", "小儿豉翘清热颗粒", "2g", "袋", 6, "盒", "28.80", "2", "g", 1, "口服", "tid", (2, 2), FEE_PATENT, "02"),
}
del D

# ------------------------------------------------------------------------ exams, labs
class Service(NamedTuple):
    code: str  # hospital item code (also the order code)
    name: str
    price: str
    category: str
    insurance_class: str
    national_code: str | None = None


EXAMS: dict[str, Service] = {
    "DR_CHEST": Service("JC00101", "胸部正位DR", "80.00", FEE_EXAM, "01"),
    "CT_CHEST": Service("JC00102", "胸部CT平扫", "220.00", FEE_EXAM, "02"),
    "PFT": Service("JC00103", "肺通气功能检查", "150.00", FEE_EXAM, "02"),
    "ECG": Service("JC00201", "常规心电图检查", "25.00", FEE_EXAM, "01", "310701001"),
    "ECHO": Service("JC00202", "超声心动图(心脏彩超)", "230.00", FEE_EXAM, "02"),
    "HOLTER": Service("JC00203", "动态心电图", "180.00", FEE_EXAM, "02"),
    "US_ABD": Service("JC00301", "腹部彩色多普勒超声(肝胆胰脾)", "160.00", FEE_EXAM, "01"),
    "GASTRO": Service("JC00302", "电子胃镜检查", "300.00", FEE_EXAM, "02"),
    "US_THY": Service("JC00303", "甲状腺彩色多普勒超声", "120.00", FEE_EXAM, "01"),
    "US_URO": Service("JC00304", "泌尿系彩色多普勒超声", "150.00", FEE_EXAM, "01"),
    "CT_HEAD": Service("JC00401", "头颅CT平扫", "180.00", FEE_EXAM, "02"),
    "DR_KNEE": Service("JC00501", "膝关节正侧位DR", "110.00", FEE_EXAM, "01"),
    "DR_LSPINE": Service("JC00502", "腰椎正侧位DR", "110.00", FEE_EXAM, "01"),
    "DR_ANKLE": Service("JC00503", "踝关节正侧位DR", "100.00", FEE_EXAM, "01"),
    "DXA": Service("JC00504", "双能X线骨密度测定", "120.00", FEE_EXAM, "02"),
}


class Analyte(NamedTuple):
    code: str
    name: str
    unit: str | None
    low: str | None  # None: no lower limit ("< high")
    high: str | None
    decimals: int
    female: tuple[str | None, str | None] | None = None  # sex-specific range for women
    qualitative: bool = False  # value is 阴性 / + / ++; range text 阴性


A = Analyte
ANALYTES: dict[str, Analyte] = {
    "WBC": A("WBC", "白细胞计数", "10^9/L", "3.5", "9.5", 2),
    "NEUT%": A("NEUT%", "中性粒细胞百分比", "%", "40", "75", 1),
    "LYMPH%": A("LYMPH%", "淋巴细胞百分比", "%", "20", "50", 1),
    "RBC": A("RBC", "红细胞计数", "10^12/L", "4.3", "5.8", 2, ("3.8", "5.1")),
    "HGB": A("HGB", "血红蛋白", "g/L", "130", "175", 0, ("115", "150")),
    "PLT": A("PLT", "血小板计数", "10^9/L", "125", "350", 0),
    "CRP": A("CRP", "C反应蛋白", "mg/L", None, "10", 1),
    "ALT": A("ALT", "丙氨酸氨基转移酶", "U/L", "9", "50", 0, ("7", "40")),
    "AST": A("AST", "天门冬氨酸氨基转移酶", "U/L", "15", "40", 0, ("13", "35")),
    "TBIL": A("TBIL", "总胆红素", "μmol/L", None, "23", 1),
    "ALB": A("ALB", "白蛋白", "g/L", "40", "55", 1),
    "UREA": A("UREA", "尿素", "mmol/L", "3.1", "8.0", 2),
    "CREA": A("CREA", "肌酐", "μmol/L", "57", "111", 0, ("41", "81")),
    "UA": A("UA", "尿酸", "μmol/L", "208", "428", 0, ("155", "357")),
    "GLU": A("GLU", "空腹血糖", "mmol/L", "3.9", "6.1", 2),
    "HbA1c": A("HbA1c", "糖化血红蛋白", "%", "4.0", "6.0", 1),
    "TC": A("TC", "总胆固醇", "mmol/L", None, "5.18", 2),
    "TG": A("TG", "甘油三酯", "mmol/L", None, "1.70", 2),
    "HDL-C": A("HDL-C", "高密度脂蛋白胆固醇", "mmol/L", "1.04", None, 2),
    "LDL-C": A("LDL-C", "低密度脂蛋白胆固醇", "mmol/L", None, "3.37", 2),
    "TSH": A("TSH", "促甲状腺激素", "mIU/L", "0.27", "4.20", 2),
    "FT3": A("FT3", "游离三碘甲状腺原氨酸", "pmol/L", "3.10", "6.80", 2),
    "FT4": A("FT4", "游离甲状腺素", "pmol/L", "12.0", "22.0", 1),
    "cTnI": A("cTnI", "心肌肌钙蛋白I", "ng/mL", None, "0.04", 3),
    "pH": A("pH", "尿酸碱度", None, "4.5", "8.0", 1),
    "SG": A("SG", "尿比重", None, "1.003", "1.030", 3),
    "LEU": A("LEU", "尿白细胞", None, None, None, 0, qualitative=True),
    "NIT": A("NIT", "亚硝酸盐", None, None, None, 0, qualitative=True),
    "PRO": A("PRO", "尿蛋白", None, None, None, 0, qualitative=True),
    "BLD": A("BLD", "尿隐血", None, None, None, 0, qualitative=True),
    "OB": A("OB", "粪便隐血", None, None, None, 0, qualitative=True),
}
del A


class Lab(NamedTuple):
    service: Service
    analytes: tuple[str, ...]
    blood: bool = True  # needs a venous blood draw


LABS: dict[str, Lab] = {
    "CBC": Lab(Service("HY00101", "血常规", "20.00", FEE_LAB, "01", "250101015"),
               ("WBC", "NEUT%", "LYMPH%", "RBC", "HGB", "PLT")),
    "CRP": Lab(Service("HY00102", "C反应蛋白测定", "40.00", FEE_LAB, "01"), ("CRP",)),
    "LFT": Lab(Service("HY00201", "肝功能", "55.00", FEE_LAB, "01"), ("ALT", "AST", "TBIL", "ALB")),
    "RFT": Lab(Service("HY00202", "肾功能", "40.00", FEE_LAB, "01"), ("UREA", "CREA", "UA")),
    "GLU": Lab(Service("HY00203", "空腹血糖", "6.00", FEE_LAB, "01"), ("GLU",)),
    "HBA1C": Lab(Service("HY00204", "糖化血红蛋白", "70.00", FEE_LAB, "02"), ("HbA1c",)),
    "LIPID": Lab(Service("HY00205", "血脂四项", "45.00", FEE_LAB, "01"), ("TC", "TG", "HDL-C", "LDL-C")),
    "THY": Lab(Service("HY00206", "甲状腺功能", "120.00", FEE_LAB, "02"), ("TSH", "FT3", "FT4")),
    "TNI": Lab(Service("HY00207", "心肌肌钙蛋白I测定", "80.00", FEE_LAB, "02"), ("cTnI",)),
    "URINE": Lab(Service("HY00301", "尿常规", "15.00", FEE_LAB, "01"),
                 ("pH", "SG", "LEU", "NIT", "PRO", "BLD"), blood=False),
    "STOOL": Lab(Service("HY00302", "粪便常规+隐血", "15.00", FEE_LAB, "01"), ("OB",), blood=False),
}


# -------------------------------------------------------------------------- diagnoses
class Dx(NamedTuple):
    code: str  # ICD-10 (国家临床版 2.0 style)
    name: str
    depts: tuple[str, ...]  # first is the usual clinic; 2000 means it can be an emergency
    symptoms: tuple[str, ...]  # the first (cardinal) one is always reported
    duration: tuple[str, int, int]  # unit (小时/天/周/月/年), min, max
    drugs: tuple[str, ...]
    exams: tuple[str, ...] = ()
    labs: tuple[str, ...] = ()
    bias: tuple[tuple[str, str], ...] = ()  # analyte → "H"/"L"/"+" expected when abnormal
    complaint: str = "{s}{d}"  # {s}: symptoms joined by 、, {d}: duration
    min_age: int = 14
    max_age: int = 120
    sex: str | None = None  # "1" male only / "2" female only
    chronic: bool = False
    kids: tuple[str, ...] = ()  # pediatric drug list (children can get this diagnosis)
    weight: float = 1.0  # how common, among acute visits


DIAGNOSES: dict[str, Dx] = {d.code: d for d in (
    Dx("J06.900", "急性上呼吸道感染", ("0301", "0200", "5000", "2000"),
       ("咳嗽", "发热", "咽痛", "流涕", "鼻塞", "乏力"), ("天", 1, 5),
       ("LHQW", "ACET", "IBU", "PDL", "AMBR"), ("DR_CHEST",), ("CBC", "CRP"),
       kids=("K_AAHN", "K_IBU", "K_DQ"), weight=6),
    Dx("J20.900", "急性支气管炎", ("0301", "0200", "2000"),
       ("咳嗽", "咳痰", "发热", "胸闷"), ("天", 3, 10),
       ("AMBR", "CEFU", "AZI", "DEXT", "LHQW"), ("DR_CHEST",), ("CBC", "CRP"),
       (("WBC", "H"), ("NEUT%", "H"), ("CRP", "H")), kids=("K_AMCL", "K_IBU", "K_AAHN"), weight=3),
    Dx("J18.900", "肺炎", ("0301", "2000"),
       ("发热", "咳嗽", "咳痰", "胸痛", "气促"), ("天", 2, 7),
       ("LEVO", "CEFU_IV", "AZI", "AMBR"), ("DR_CHEST", "CT_CHEST"), ("CBC", "CRP"),
       (("WBC", "H"), ("NEUT%", "H"), ("CRP", "H")), kids=("K_AMCL", "K_IBU"), weight=1.2),
    Dx("J02.900", "急性咽炎", ("1100", "0200", "0301"),
       ("咽痛", "咽干", "咽部异物感"), ("天", 1, 5), ("PDL", "LHQW", "AMOX"), (), ("CBC",), weight=2),
    Dx("J03.900", "急性扁桃体炎", ("1100", "2000"),
       ("咽痛", "发热", "吞咽困难"), ("天", 1, 4), ("AMOX", "CEFU", "IBU", "CEFU_IV"), (), ("CBC", "CRP"),
       (("WBC", "H"), ("NEUT%", "H"), ("CRP", "H")), kids=("K_AMCL", "K_IBU"), weight=1.5),
    Dx("J45.900", "支气管哮喘", ("0301",),
       ("喘息", "胸闷", "气促", "咳嗽"), ("年", 1, 15), ("BUD", "MONT"), ("PFT", "DR_CHEST"), ("CBC",),
       complaint="反复{s}{d}", chronic=True),
    Dx("J44.900", "慢性阻塞性肺疾病", ("0301",),
       ("咳嗽", "咳痰", "活动后气短"), ("年", 2, 20), ("BUD", "AMBR"), ("PFT", "CT_CHEST"), ("CBC",),
       complaint="反复{s}{d}", min_age=50, chronic=True),
    Dx("J30.400", "变应性鼻炎", ("1100",),
       ("鼻痒", "打喷嚏", "流清涕", "鼻塞"), ("月", 1, 24), ("LORA", "MOMET", "MONT"),
       complaint="反复{s}{d}", chronic=True),
    Dx("K29.500", "慢性胃炎", ("0302", "0200", "5000"),
       ("上腹痛", "腹胀", "反酸", "嗳气"), ("月", 1, 12), ("OME", "MOSA", "ALMG"), ("GASTRO", "US_ABD"),
       complaint="间断{s}{d}", weight=2.5),
    Dx("K21.900", "胃食管反流病", ("0302",),
       ("反酸", "烧心", "胸骨后烧灼感"), ("月", 1, 12), ("OME", "MOSA"), ("GASTRO",),
       complaint="反复{s}{d}", chronic=True),
    Dx("K52.900", "胃肠炎", ("0302", "0200", "2000"),
       ("腹泻", "腹痛", "恶心", "呕吐", "发热"), ("天", 1, 3), ("SMEC", "ORS", "BIFI"), (), ("CBC", "STOOL"),
       (("WBC", "H"), ("OB", "+")), kids=("SMEC", "ORS", "BIFI"), weight=2),
    Dx("K59.000", "便秘", ("0302", "0200"),
       ("排便困难", "大便干结", "腹胀"), ("月", 1, 6), ("LACTU", "BIFI"), ("US_ABD",), weight=0.8),
    Dx("I10.x00", "原发性高血压", ("0304", "0200"),
       ("头晕", "头痛", "颈部僵硬"), ("年", 1, 20), ("AMLO", "VALS", "METO"), ("ECG", "ECHO"), ("RFT", "LIPID", "GLU"),
       (("TC", "H"), ("UA", "H")), complaint="发现血压升高{d}，伴{s}，复诊", min_age=35, chronic=True),
    Dx("I25.103", "冠状动脉粥样硬化性心脏病", ("0304",),
       ("胸闷", "心前区疼痛", "心悸", "活动后气短"), ("年", 1, 10), ("ASP", "ATOR", "METO", "NITRO", "CLOP"),
       ("ECG", "ECHO", "HOLTER"), ("LIPID", "LFT"), (("LDL-C", "H"), ("TC", "H")),
       complaint="反复{s}{d}", min_age=45, chronic=True),
    Dx("I20.000", "不稳定型心绞痛", ("2000", "0304"),
       ("胸痛", "胸闷", "出汗"), ("小时", 1, 12), ("ASP", "CLOP", "ATOR", "NITRO"), ("ECG",), ("TNI", "CBC"),
       min_age=45, weight=0.5),
    Dx("I48.x01", "心房颤动", ("0304",),
       ("心悸", "胸闷", "乏力"), ("月", 1, 36), ("METO", "RIVA"), ("ECG", "HOLTER", "ECHO"), ("THY",),
       complaint="阵发性{s}{d}", min_age=55, chronic=True),
    Dx("E11.900", "2型糖尿病", ("0307", "0200"),
       ("口干", "多饮", "多尿", "体重下降"), ("年", 1, 15), ("METF", "ACAR"), (), ("GLU", "HBA1C", "RFT", "LIPID"),
       (("GLU", "H"), ("HbA1c", "H"), ("TG", "H")), complaint="{s}{d}，血糖控制欠佳", min_age=30, chronic=True),
    Dx("E78.500", "高脂血症", ("0307", "0304", "0200"),
       ("血脂升高",), ("月", 1, 24), ("ATOR", "ROSU"), (), ("LIPID", "LFT"),
       (("TC", "H"), ("LDL-C", "H"), ("TG", "H"), ("HDL-C", "L")), complaint="体检发现{s}{d}",
       min_age=30, chronic=True),
    Dx("E03.900", "甲状腺功能减退症", ("0307",),
       ("乏力", "怕冷", "体重增加", "嗜睡"), ("月", 2, 24), ("LEVT",), ("US_THY",), ("THY",),
       (("TSH", "H"), ("FT4", "L"), ("FT3", "L")), sex="2", chronic=True),
    Dx("M54.500", "腰痛", ("0403", "5000", "0200"),
       ("腰痛", "活动受限", "下肢麻木"), ("周", 1, 8), ("CELE", "DICL", "DICL_GEL"), ("DR_LSPINE",), weight=2),
    Dx("M17.900", "膝关节病", ("0403",),
       ("双膝疼痛", "关节肿胀", "上下楼困难"), ("年", 1, 10), ("CELE", "DICL_GEL", "CALC"), ("DR_KNEE",),
       complaint="反复{s}{d}", min_age=45, chronic=True),
    Dx("M81.000", "绝经后骨质疏松", ("0307", "0403"),
       ("腰背痛", "身高变矮"), ("年", 1, 5), ("CALC", "ALEN"), ("DXA",), min_age=50, sex="2", chronic=True),
    Dx("L50.900", "荨麻疹", ("1300", "2000"),
       ("皮肤瘙痒", "风团"), ("天", 1, 7), ("LORA", "CALA"), (), ("CBC",), kids=("CALA",), weight=1.2),
    Dx("L30.900", "皮炎", ("1300",),
       ("皮疹", "瘙痒"), ("周", 1, 6), ("DESO", "LORA"), weight=1.2),
    Dx("N39.000", "泌尿道感染", ("0404", "0200", "2000"),
       ("尿频", "尿急", "尿痛", "发热"), ("天", 1, 5), ("LEVO",), ("US_URO",), ("URINE", "CBC"),
       (("LEU", "+"), ("NIT", "+"), ("BLD", "+"), ("WBC", "H")), weight=1.2),
    Dx("N40.x00", "前列腺增生", ("0404",),
       ("尿频", "夜尿增多", "排尿困难"), ("年", 1, 10), ("TAMS", "FINA"), ("US_URO",), ("URINE",),
       min_age=50, sex="1", chronic=True),
    Dx("N20.000", "肾结石", ("0404", "2000"),
       ("腰痛", "血尿", "恶心"), ("小时", 2, 24), ("TAMS", "ANIS", "DICL"), ("US_URO",), ("URINE", "RFT"),
       (("BLD", "+"),), complaint="突发{s}{d}", weight=0.8),
    Dx("G43.900", "偏头痛", ("0303",),
       ("头痛", "恶心", "畏光"), ("月", 1, 24), ("IBU", "FLUN"), ("CT_HEAD",), complaint="反复发作性{s}{d}",
       weight=0.8),
    Dx("I63.900", "脑梗死", ("0303",),
       ("肢体无力", "言语不清", "头晕"), ("月", 3, 36), ("ASP", "ATOR", "CLOP"), ("CT_HEAD",), ("LIPID", "GLU"),
       (("LDL-C", "H"), ("GLU", "H")), complaint="脑梗死后{s}{d}", min_age=50, chronic=True),
    Dx("R42.x00", "头晕和眩晕", ("0303", "2000", "0200"),
       ("头晕", "恶心", "视物旋转"), ("天", 1, 5), ("BETA", "FLUN"), ("CT_HEAD",), ("CBC",), weight=1.2),
    Dx("S93.400", "踝扭伤", ("2000", "0403"),
       ("右踝疼痛", "右踝肿胀", "活动受限"), ("小时", 1, 24), ("CELE", "DICL_GEL", "YNBY"), ("DR_ANKLE",),
       complaint="扭伤后{s}{d}", weight=1),
)}

# Prevalence of chronic conditions among adults: code → (min_age, probability).
CHRONIC_PREVALENCE: dict[str, tuple[int, float]] = {
    "I10.x00": (40, 0.30), "E11.900": (40, 0.12), "E78.500": (35, 0.18), "I25.103": (55, 0.10),
    "J44.900": (55, 0.06), "M17.900": (50, 0.15), "N40.x00": (55, 0.25), "M81.000": (55, 0.15),
    "E03.900": (20, 0.04), "I63.900": (60, 0.05), "I48.x01": (60, 0.05), "J45.900": (14, 0.03),
    "K21.900": (25, 0.05), "J30.400": (14, 0.08),
}


# ------------------------------------------------------------- the demo hospital's map
def demo_fee_item_map() -> str:
    """The demo hospital's fee-item map (CSV, as `gateway terminology import` takes it): its
    items that carry no national list code → synthetic NHSA-shaped codes (Chinese patent
    drugs ``Z…``, 23 characters; services 9 digits), so its visits can be settled."""
    rows = ["source_code,source_display,target_code,target_display"]

    def synthetic(code: str, width: int) -> str:
        return f"{zlib.crc32(code.encode()) % 10 ** width:0{width}d}"

    for drug in DRUGS.values():
        if national_drug_code(drug) is None:
            rows.append(f"{drug.code},{drug.name},"
                        f"Z{synthetic(drug.code, 10)}{synthetic(drug.name, 10)}01,{drug.name}")
    services = [*EXAMS.values(), *(lab.service for lab in LABS.values())]
    items = [(s.code, s.national_code, s.name) for s in services]
    items += [(c, n, name) for c, n, name, *_ in (INFUSION_FEE, INFUSION_SET_FEE, BLOOD_DRAW_FEE)]
    for code, national, name in items:
        if national is None:
            rows.append(f"{code},{name},{synthetic(code, 9)},{name}")
    return "\n".join(rows) + "\n"
