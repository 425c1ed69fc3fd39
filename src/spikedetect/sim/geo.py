"""Where simulated reports come from: a region hierarchy with a long-tailed population.

Regions are ``CC/STATE/City`` leaves (plus a few ``CC/STATE`` and ``CC`` leaves for
reports whose city or state is unknown). Each country has a share of a service's
reports and each leaf a local UTC offset, so daily cycles follow local time. Cities
are listed biggest first and weighted Zipf-like by rank: a few big cities, many small
ones.

>>> pop = build_population()
>>> pop.leaf("US/CA/Los Angeles").utc_offset_min
-480
>>> round(float(pop.shares("instagram").sum()), 6)
1.0
>>> share = pop.shares("instagram")
>>> bool(share[pop.index["US/NY/New York"]] > share[pop.index["US/TX/Houston"]])
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

# code, share of a service's reports, default UTC offset (minutes), "ST City; ST City; ..." biggest first.
# Offsets are the standard/summer time in force in late November (southern summer for AU, NZ).
_COUNTRIES: tuple[tuple[str, float, int, str], ...] = (
    (
        "US",
        0.300,
        -300,
        "NY New York; CA Los Angeles; IL Chicago; TX Houston; AZ Phoenix; PA Philadelphia; TX San Antonio; "
        "CA San Diego; TX Dallas; CA San Jose; TX Austin; FL Jacksonville; TX Fort Worth; OH Columbus; "
        "NC Charlotte; CA San Francisco; IN Indianapolis; WA Seattle; CO Denver; DC Washington; MA Boston; "
        "TX El Paso; TN Nashville; MI Detroit; OK Oklahoma City; OR Portland; NV Las Vegas; TN Memphis; "
        "KY Louisville; MD Baltimore; WI Milwaukee; NM Albuquerque; AZ Tucson; CA Fresno; CA Sacramento; "
        "AZ Mesa; MO Kansas City; GA Atlanta; NE Omaha; CO Colorado Springs; NC Raleigh; FL Miami; "
        "CA Long Beach; VA Virginia Beach; CA Oakland; MN Minneapolis; OK Tulsa; FL Tampa; TX Arlington; "
        "LA New Orleans; KS Wichita; OH Cleveland; CA Bakersfield; CO Aurora; CA Anaheim; HI Honolulu; "
        "CA Santa Ana; CA Riverside; TX Corpus Christi; KY Lexington; PA Pittsburgh; MO St. Louis; "
        "OH Cincinnati; FL Orlando; NY Buffalo; NJ Newark; NJ Jersey City; UT Salt Lake City; ID Boise; "
        "VA Richmond",
    ),
    (
        "IN",
        0.220,
        330,
        "MH Mumbai; DL Delhi; KA Bengaluru; TG Hyderabad; GJ Ahmedabad; TN Chennai; WB Kolkata; GJ Surat; "
        "MH Pune; RJ Jaipur; UP Lucknow; UP Kanpur; MH Nagpur; MP Indore; MH Thane; MP Bhopal; "
        "AP Visakhapatnam; BR Patna; GJ Vadodara; UP Ghaziabad; PB Ludhiana; UP Agra; MH Nashik; "
        "HR Faridabad; UP Meerut; GJ Rajkot; UP Varanasi; JK Srinagar; PB Amritsar; JH Ranchi; "
        "TN Coimbatore; AS Guwahati; CH Chandigarh; KL Kochi; KL Thiruvananthapuram; KA Mysuru; "
        "HR Gurugram; UP Noida",
    ),
    (
        "BR",
        0.090,
        -180,
        "SP São Paulo; RJ Rio de Janeiro; DF Brasília; BA Salvador; CE Fortaleza; MG Belo Horizonte; "
        "AM Manaus; PR Curitiba; PE Recife; RS Porto Alegre; GO Goiânia; PA Belém; SP Campinas; SP Guarulhos",
    ),
    (
        "GB",
        0.050,
        0,
        "ENG London; ENG Birmingham; ENG Manchester; SCT Glasgow; ENG Leeds; ENG Liverpool; SCT Edinburgh; "
        "ENG Bristol; ENG Sheffield; WLS Cardiff; NIR Belfast; ENG Leicester; ENG Nottingham; ENG Newcastle",
    ),
    (
        "ID",
        0.040,
        420,
        "JK Jakarta; JI Surabaya; JB Bandung; SU Medan; JB Bekasi; JT Semarang; BT Tangerang; JB Depok; "
        "SN Makassar; SS Palembang",
    ),
    (
        "MX",
        0.040,
        -360,
        "CMX Mexico City; JAL Guadalajara; NLE Monterrey; PUE Puebla; BCN Tijuana; GUA León; CHH Juárez; "
        "JAL Zapopan; YUC Mérida; ROO Cancún; QUE Querétaro",
    ),
    (
        "DE",
        0.035,
        60,
        "BE Berlin; HH Hamburg; BY München; NW Köln; HE Frankfurt; BW Stuttgart; NW Düsseldorf; SN Leipzig; "
        "NW Dortmund; NW Essen; HB Bremen; SN Dresden; NI Hannover; BY Nürnberg",
    ),
    (
        "FR",
        0.030,
        60,
        "IDF Paris; PAC Marseille; ARA Lyon; OCC Toulouse; PAC Nice; PDL Nantes; GES Strasbourg; "
        "OCC Montpellier; NAQ Bordeaux; HDF Lille; BRE Rennes",
    ),
    (
        "CA",
        0.030,
        -300,
        "ON Toronto; QC Montreal; AB Calgary; ON Ottawa; AB Edmonton; MB Winnipeg; ON Mississauga; "
        "BC Vancouver; ON Brampton; ON Hamilton; QC Quebec City; NS Halifax",
    ),
    (
        "JP",
        0.030,
        540,
        "13 Tokyo; 14 Yokohama; 27 Osaka; 23 Nagoya; 01 Sapporo; 40 Fukuoka; 28 Kobe; 26 Kyoto; "
        "14 Kawasaki; 11 Saitama",
    ),
    (
        "TR",
        0.030,
        180,
        "34 Istanbul; 06 Ankara; 35 Izmir; 16 Bursa; 07 Antalya; 01 Adana; 42 Konya; 27 Gaziantep",
    ),
    (
        "IT",
        0.025,
        60,
        "RM Rome; MI Milan; NA Naples; TO Turin; PA Palermo; GE Genoa; BO Bologna; FI Florence; BA Bari; "
        "CT Catania",
    ),
    (
        "ES",
        0.025,
        60,
        "MD Madrid; CT Barcelona; VC Valencia; AN Sevilla; AR Zaragoza; AN Málaga; MC Murcia; IB Palma; "
        "PV Bilbao",
    ),
    (
        "AU",
        0.020,
        660,
        "NSW Sydney; VIC Melbourne; QLD Brisbane; WA Perth; SA Adelaide; QLD Gold Coast; ACT Canberra; "
        "NSW Newcastle",
    ),
    (
        "PH",
        0.020,
        480,
        "NCR Quezon City; NCR Manila; DAV Davao City; NCR Caloocan; CEB Cebu City; ZAS Zamboanga",
    ),
    ("NG", 0.015, 60, "LA Lagos; KN Kano; OY Ibadan; FC Abuja; RI Port Harcourt; ED Benin City"),
    (
        "AR",
        0.015,
        -180,
        "C Buenos Aires; X Córdoba; S Rosario; M Mendoza; B La Plata; T Tucumán; B Mar del Plata",
    ),
)

# States whose offset differs from their country's default (minutes east of UTC).
_STATE_OFFSETS: dict[str, dict[str, int]] = {
    "US": {
        **dict.fromkeys(("CA", "WA", "OR", "NV"), -480),
        **dict.fromkeys(("AZ", "CO", "NM", "UT", "ID"), -420),
        **dict.fromkeys(("TX", "IL", "MN", "MO", "TN", "LA", "WI", "OK", "NE", "KS"), -360),
        "HI": -600,
    },
    "BR": {"AM": -240},
    "MX": {"BCN": -480, "CHH": -420, "ROO": -300},
    "CA": {"AB": -420, "BC": -480, "MB": -360, "NS": -240},
    "ID": {"SN": 480},
    "AU": {"QLD": 600, "WA": 480, "SA": 630},
}

# How much more (or less) a service is used in a country than its default share says.
SERVICE_COUNTRY_BIAS: dict[str, dict[str, float]] = {
    "instagram": {},
    "whatsapp": {"US": 0.35, "IN": 1.8, "BR": 2.2, "MX": 1.6, "ID": 1.6, "NG": 2.0, "AR": 1.6, "ES": 1.4},
    "facebook": {"US": 1.1, "PH": 2.5, "MX": 1.4, "IN": 1.2, "ID": 1.3, "JP": 0.4},
    "threads": {"US": 1.6, "JP": 1.8, "IN": 0.8, "BR": 1.1, "NG": 0.3},
}

ZIPF_EXPONENT = 0.9  # city weight ~ rank**-s within a country
COUNTRY_ONLY_SHARE = 0.03  # reports located to the country only ("US")
STATE_ONLY_SHARE = 0.04  # reports located to the state only, in each country's biggest state


@dataclass(frozen=True)
class Leaf:
    """A region that reports are attributed to, with its weight inside its country."""

    region: str
    country: str
    weight: float  # share of its country's reports
    utc_offset_min: int


@dataclass(frozen=True)
class Population:
    """Leaves and country shares; :meth:`shares` gives each leaf's share of a service."""

    leaves: tuple[Leaf, ...]
    country_share: Mapping[str, float]
    service_bias: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: SERVICE_COUNTRY_BIAS)
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {leaf.region: i for i, leaf in enumerate(self.leaves)})

    def leaf(self, region: str) -> Leaf:
        return self.leaves[self.index[region]]

    def shares(self, service: str) -> np.ndarray:
        """Each leaf's share of the service's reports (sums to 1)."""
        bias = self.service_bias.get(service, {})
        raw = np.array(
            [
                leaf.weight * self.country_share[leaf.country] * bias.get(leaf.country, 1.0)
                for leaf in self.leaves
            ]
        )
        return np.asarray(raw / raw.sum())

    def leaves_under(self, key: str) -> list[int]:
        """Indexes of the leaves whose region is ``key`` or below it (``"*"``: all)."""
        if key == "*":
            return list(range(len(self.leaves)))
        prefix = key + "/"
        return [
            i for i, leaf in enumerate(self.leaves) if leaf.region == key or leaf.region.startswith(prefix)
        ]

    def offsets_min(self) -> np.ndarray:
        return np.array([leaf.utc_offset_min for leaf in self.leaves], dtype=np.int64)


def country_leaves(
    code: str, cities: str, default_offset_min: int, state_offsets: Mapping[str, int] | None = None
) -> list[Leaf]:
    """Leaves of one country from ``"ST City; ST City"`` (biggest first), weights summing to 1.

    >>> [(x.region, round(x.weight, 3)) for x in country_leaves("NZ", "AUK Auckland; WGN Wellington", 780)]
    [('NZ/AUK/Auckland', 0.606), ('NZ/WGN/Wellington', 0.338), ('NZ/AUK', 0.025), ('NZ', 0.03)]
    """
    offsets = state_offsets or {}
    entries = [item.strip().split(" ", 1) for item in cities.split(";") if item.strip()]
    ranks = np.arange(1, len(entries) + 1, dtype=float)
    city_w = ranks**-ZIPF_EXPONENT
    city_w = city_w / city_w.sum() * (1.0 - COUNTRY_ONLY_SHARE)
    state_w: dict[str, float] = {}
    for (state, _), w in zip(entries, city_w, strict=True):
        state_w[state] = state_w.get(state, 0.0) + float(w)
    top_state = max(state_w, key=lambda s: state_w[s])
    leaves = []
    for (state, city), w in zip(entries, city_w, strict=True):
        keep = 1.0 - STATE_ONLY_SHARE if state == top_state else 1.0
        off = offsets.get(state, default_offset_min)
        leaves.append(Leaf(f"{code}/{state}/{city}", code, float(w) * keep, off))
    top_off = offsets.get(top_state, default_offset_min)
    leaves.append(Leaf(f"{code}/{top_state}", code, state_w[top_state] * STATE_ONLY_SHARE, top_off))
    leaves.append(Leaf(code, code, COUNTRY_ONLY_SHARE, default_offset_min))
    return leaves


def build_population() -> Population:
    """The default world: 17 countries, about 290 leaves."""
    leaves: list[Leaf] = []
    shares: dict[str, float] = {}
    for code, share, offset, cities in _COUNTRIES:
        leaves.extend(country_leaves(code, cities, offset, _STATE_OFFSETS.get(code)))
        shares[code] = share
    return Population(tuple(leaves), shares)
