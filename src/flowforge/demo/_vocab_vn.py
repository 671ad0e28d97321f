"""Vietnamese reference vocabularies for the e-commerce demo: names, places, catalogue.

Kept apart from the generation rules (``ecommerce.py``). Every tuple is ordered and immutable:
the generator indexes into them with a seeded RNG, so reordering an entry changes the data set.
Weights are rough shares (family names follow their frequency in Vietnam; cities their share
of online shoppers).
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def ascii_fold(text: str) -> str:
    """'Nguyễn Đức' → 'nguyen duc': for e-mail addresses, which stay ASCII."""
    text = text.replace("Đ", "D").replace("đ", "d")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


FAMILY_NAMES: tuple[tuple[str, float], ...] = (
    ("Nguyễn", 38.0), ("Trần", 11.0), ("Lê", 9.5), ("Phạm", 7.0), ("Hoàng", 5.1), ("Huỳnh", 5.1),
    ("Phan", 4.5), ("Vũ", 3.9), ("Võ", 3.9), ("Đặng", 2.1), ("Bùi", 2.0), ("Đỗ", 1.4), ("Hồ", 1.3),
    ("Ngô", 1.3), ("Dương", 1.0), ("Lý", 0.5), ("Trương", 0.5), ("Đinh", 0.4), ("Lâm", 0.4), ("Mai", 0.3),
)

MIDDLE_NAMES_MALE: tuple[str, ...] = _words("Văn Hữu Đức Minh Quốc Thanh Hoàng Gia Bảo Tuấn Công Anh")
MIDDLE_NAMES_FEMALE: tuple[str, ...] = _words("Thị Ngọc Thu Thanh Minh Phương Kim Bảo Mỹ Hồng Diệu Khánh")

GIVEN_NAMES_MALE: tuple[str, ...] = _words(
    """
    An Bình Cường Dũng Duy Đạt Hải Hiếu Hoàng Hùng Huy Khang Khánh Khoa Kiên Long Lộc Minh Nam Nghĩa
    Phong Phúc Quân Quang Sơn Tài Tâm Thắng Thành Thịnh Toàn Trí Trung Tuấn Tùng Việt Vinh Vũ
    """
)
GIVEN_NAMES_FEMALE: tuple[str, ...] = _words(
    """
    Anh Châu Chi Diệp Dung Giang Hà Hạnh Hằng Hiền Hoa Hương Hường Lan Linh Loan Mai My Nga Ngân Ngọc
    Nhi Nhung Oanh Phương Quyên Quỳnh Tâm Thảo Thu Thủy Tiên Trang Trâm Uyên Vân Vy Xuân Yến
    """
)

EMAIL_DOMAINS: tuple[str, ...] = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com",
                                  "fpt.vn", "vnn.vn")
EMAIL_DOMAIN_WEIGHTS: tuple[float, ...] = (62, 12, 8, 6, 5, 4, 3)

# Mobile prefixes of Viettel, Vinaphone and Mobifone; numbers are ten digits.
PHONE_PREFIXES: tuple[str, ...] = _words(
    "032 033 034 035 036 037 038 039 086 096 097 098 081 082 083 084 085 088 091 094 070 076 077 078 079 089 090 093"
)

STREETS: tuple[str, ...] = (
    "Lê Lợi", "Nguyễn Huệ", "Trần Hưng Đạo", "Hai Bà Trưng", "Lý Thường Kiệt", "Điện Biên Phủ",
    "Cách Mạng Tháng Tám", "Nguyễn Trãi", "Lê Duẩn", "Võ Văn Tần", "Phan Đình Phùng", "Hoàng Diệu",
    "Bạch Đằng", "Quang Trung", "Nguyễn Văn Linh", "Lê Văn Sỹ", "Pasteur", "Nam Kỳ Khởi Nghĩa",
    "Nguyễn Thị Minh Khai", "Trường Chinh", "Phạm Văn Đồng", "Lạc Long Quân", "Âu Cơ", "Hùng Vương",
    "Nguyễn Du", "Bà Triệu", "Kim Mã", "Xuân Thủy", "Cầu Giấy", "Tôn Đức Thắng", "Phan Chu Trinh",
    "Ngô Quyền", "Lê Thánh Tôn", "Nguyễn Đình Chiểu", "Võ Thị Sáu", "Đinh Tiên Hoàng",
)


class City(NamedTuple):
    name: str
    weight: float
    districts: tuple[str, ...]


CITIES: tuple[City, ...] = (
    City("Hồ Chí Minh", 30, ("Quận 1", "Quận 3", "Quận 5", "Quận 7", "Quận 10", "Bình Thạnh", "Gò Vấp",
                             "Tân Bình", "Phú Nhuận", "Thủ Đức")),
    City("Hà Nội", 25, ("Ba Đình", "Hoàn Kiếm", "Đống Đa", "Hai Bà Trưng", "Cầu Giấy", "Thanh Xuân",
                        "Tây Hồ", "Long Biên", "Hoàng Mai", "Nam Từ Liêm")),
    City("Đà Nẵng", 7, ("Hải Châu", "Thanh Khê", "Sơn Trà", "Ngũ Hành Sơn", "Liên Chiểu")),
    City("Hải Phòng", 6, ("Hồng Bàng", "Lê Chân", "Ngô Quyền", "Kiến An")),
    City("Cần Thơ", 5, ("Ninh Kiều", "Cái Răng", "Bình Thủy")),
    City("Bình Dương", 5, ("Thủ Dầu Một", "Dĩ An", "Thuận An")),
    City("Đồng Nai", 4, ("Biên Hòa", "Long Khánh", "Nhơn Trạch")),
    City("Khánh Hòa", 3, ("Nha Trang", "Cam Ranh")),
    City("Thừa Thiên Huế", 3, ("Huế", "Hương Thủy")),
    City("Bà Rịa - Vũng Tàu", 3, ("Vũng Tàu", "Bà Rịa")),
    City("Quảng Ninh", 3, ("Hạ Long", "Cẩm Phả", "Uông Bí")),
    City("Nghệ An", 3, ("Vinh", "Cửa Lò")),
    City("Thanh Hóa", 3, ("Thanh Hóa", "Sầm Sơn")),
)


class Category(NamedTuple):
    name: str
    parent: str | None
    description: str
    price_low: int  # VND; unit prices are log-uniform between low and high, in whole thousands
    price_high: int
    vat_rate_bp: int  # basis points: 2024's reduced 8 % rate or the standard 10 %
    brands: tuple[str, ...]
    nouns: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category("Điện tử", None, "Electronics", 0, 0, 0, (), ()),
    Category("Thời trang", None, "Fashion", 0, 0, 0, (), ()),
    Category("Nhà cửa & Đời sống", None, "Home & Living", 0, 0, 0, (), ()),
    Category("Sức khỏe & Làm đẹp", None, "Health & Beauty", 0, 0, 0, (), ()),
    Category("Thể thao & Du lịch", None, "Sports & Travel", 0, 0, 0, (), ()),
    Category("Mẹ & Bé", None, "Mother & Baby", 0, 0, 0, (), ()),
    Category("Điện thoại", "Điện tử", "Smartphones", 2_000_000, 45_000_000, 1000,
             ("Samsung", "Apple", "Xiaomi", "OPPO", "Vivo", "Realme"), ("Điện thoại", "Smartphone")),
    Category("Laptop", "Điện tử", "Laptops", 8_000_000, 50_000_000, 1000,
             ("Dell", "HP", "Lenovo", "Asus", "Acer", "Apple"), ("Laptop", "Máy tính xách tay")),
    Category("Phụ kiện điện tử", "Điện tử", "Electronic accessories", 50_000, 3_000_000, 1000,
             ("Anker", "Baseus", "Ugreen", "Xiaomi", "JBL", "Sony"), ("Tai nghe", "Sạc dự phòng", "Cáp sạc", "Loa")),
    Category("Thời trang nam", "Thời trang", "Men's fashion", 99_000, 2_500_000, 800,
             ("Owen", "Việt Tiến", "Routine", "Coolmate", "Aristino"),
             ("Áo sơ mi", "Quần jean", "Áo thun", "Áo khoác")),
    Category("Thời trang nữ", "Thời trang", "Women's fashion", 99_000, 3_000_000, 800,
             ("Elise", "IVY moda", "NEM", "Canifa", "Yody"), ("Đầm", "Chân váy", "Áo kiểu", "Quần tây")),
    Category("Giày dép", "Thời trang", "Shoes", 150_000, 4_500_000, 800,
             ("Biti's", "Ananas", "Nike", "Adidas", "Vascara"), ("Giày thể thao", "Sandal", "Giày da")),
    Category("Đồ gia dụng", "Nhà cửa & Đời sống", "Household appliances", 150_000, 25_000_000, 1000,
             ("Sunhouse", "Kangaroo", "Philips", "Panasonic", "Toshiba"),
             ("Nồi cơm điện", "Máy lọc nước", "Quạt điện", "Bếp từ")),
    Category("Nội thất", "Nhà cửa & Đời sống", "Furniture", 300_000, 30_000_000, 1000,
             ("Hòa Phát", "Xuân Hòa", "IKEA", "Nhà Xinh"), ("Bàn làm việc", "Ghế văn phòng", "Kệ sách", "Sofa")),
    Category("Mỹ phẩm", "Sức khỏe & Làm đẹp", "Cosmetics", 50_000, 2_500_000, 800,
             ("Cocoon", "L'Oréal", "Innisfree", "La Roche-Posay", "Maybelline"), ("Sữa rửa mặt", "Son", "Kem dưỡng")),
    Category("Thực phẩm chức năng", "Sức khỏe & Làm đẹp", "Supplements", 80_000, 3_000_000, 800,
             ("Blackmores", "DHC", "Nature's Way", "Herbalife"), ("Vitamin C", "Omega 3", "Collagen")),
    Category("Dụng cụ thể thao", "Thể thao & Du lịch", "Sports equipment", 60_000, 20_000_000, 800,
             ("Decathlon", "Yonex", "Lining", "Kamito"), ("Vợt cầu lông", "Thảm yoga", "Máy chạy bộ", "Bóng đá")),
    Category("Vali & Balo", "Thể thao & Du lịch", "Luggage & backpacks", 200_000, 8_000_000, 800,
             ("Samsonite", "Mikkor", "Sakos", "Herschel"), ("Vali kéo", "Balo laptop", "Túi du lịch")),
    Category("Đồ chơi", "Mẹ & Bé", "Toys", 50_000, 5_000_000, 800,
             ("LEGO", "Hasbro", "Mattel", "Duka"), ("Bộ xếp hình", "Xe đồ chơi", "Búp bê")),
    Category("Sữa & Bỉm", "Mẹ & Bé", "Milk & diapers", 100_000, 2_000_000, 800,
             ("Vinamilk", "Meiji", "Bobby", "Huggies", "Abbott"), ("Sữa bột", "Bỉm", "Sữa nước")),
)
"""Six top-level categories, then fourteen leaf categories (products only belong to leaves)."""

SERIES_WORDS: tuple[str, ...] = _words("Pro Max Lite Plus Classic Premium Mini Ultra Air Neo Smart Eco")
