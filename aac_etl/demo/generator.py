"""Synthetic OpenCart 3 shop of any size (own words, own data), plus SyncProductInput export files.

:func:`generate_shop` writes a catalog in the OpenCart 3 schema (:mod:`aac_etl.sources.opencart.tables`) into
SQLite or MariaDB/MySQL: languages, a three-level category tree with ``category_path`` rows, manufacturers,
products with one description per language, specials, discounts, options with values, images, attributes,
stock statuses, SEO keywords, currencies and the ``config_currency`` setting. The data looks like a real shop
and carries the quirks real OpenCart data has, all of them valid values that normalization has to fix:

* descriptions, names and category names stored entity-encoded the way OpenCart's request filter leaves them
  (``&lt;p&gt;`` with CR LF line breaks and tabs; text entities such as ``&amp;amp;`` or ``&amp;eacute;``),
  a few descriptions stored as raw HTML, the odd ``<script>``/``<style>`` block and empty editor leftovers;
* names with leading/trailing or doubled spaces; empty or whitespace-only ``sku`` (fall back to ``model``);
  ``manufacturer_id`` 0 and a manufacturer whose name is empty; relative image paths (some with spaces,
  some empty or NULL); ``0000-00-00`` dates; specials that expired, start in the future, are not lower than
  the price or belong to another customer group; quantities of zero and a few negative ones (oversold).

Everything is vectorized with numpy and polars, chunk by chunk (bounded memory), and bulk-inserted through the
DBAPI connection in one transaction per chunk. The output is deterministic for the same arguments and seed.
Generated dates lie before 2026-07-01; only :func:`mutate_shop` stamps ``date_modified`` with the current
time (UTC), so a delta sync sees exactly the products it changed.
"""

from __future__ import annotations

import html
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import sqlalchemy as sa

from aac_etl.lib.contract import document_dtypes, load_contract
from aac_etl.sources.opencart.tables import DEFAULT_PREFIX, catalog_metadata

__all__ = ["SUPPORTED_LANGUAGES", "ShopStats", "generate_files", "generate_shop", "mutate_shop"]

# ------------------------------------------------------------------------------------------------ vocabulary


@dataclass(frozen=True)
class _Words:
    """Our own word lists for one language (all tuples align across languages)."""

    name: str
    flag: str
    departments: tuple[str, ...]
    subcategories: tuple[tuple[str, str], ...]
    qualifiers: tuple[str, ...]
    lines: tuple[str, ...]
    order: tuple[str, ...]
    materials: tuple[tuple[str, str], ...]
    openers: tuple[str, ...]
    bodies: tuple[str, ...]
    features: tuple[str, ...]
    closers: tuple[str, ...]
    labels: tuple[str, str, str]
    warranty: tuple[str, str, str]
    stock: tuple[str, str, str, str]
    options: tuple[str, str, str, str]
    colors: tuple[str, ...]
    gifts: tuple[str, str]
    attributes: tuple[str, str]
    groups: tuple[str, str]
    blurb: str


# fmt: off
_EN = _Words(
    name="English",
    flag="gb.png",
    departments=(
        "Kitchen & Dining", "Electronics", "Home & Living", "Sports & Outdoors", "Fashion",
        "Office & Stationery", "Garden", "Toys & Games",
    ),
    subcategories=(
        ("Coffee Grinder", "Coffee Grinders"), ("Kettle", "Kettles"), ("Chef Knife", "Chef Knives"),
        ("Frying Pan", "Frying Pans"), ("Headphones", "Headphones"),
        ("Bluetooth Speaker", "Bluetooth Speakers"), ("Monitor", "Monitors"), ("Power Bank", "Power Banks"),
        ("Table Lamp", "Table Lamps"), ("Cushion", "Cushions"), ("Wall Clock", "Wall Clocks"),
        ("Storage Basket", "Storage Baskets"), ("Running Shoe", "Running Shoes"), ("Yoga Mat", "Yoga Mats"),
        ("Water Bottle", "Water Bottles"), ("Hiking Backpack", "Hiking Backpacks"), ("T-Shirt", "T-Shirts"),
        ("Hoodie", "Hoodies"), ("Rain Jacket", "Rain Jackets"), ("Scarf", "Scarves"),
        ("Notebook", "Notebooks"), ("Desk Organizer", "Desk Organizers"), ("Office Chair", "Office Chairs"),
        ("Fountain Pen", "Fountain Pens"), ("Garden Hose", "Garden Hoses"),
        ("Pruning Shears", "Pruning Shears"), ("Planter", "Planters"), ("Watering Can", "Watering Cans"),
        ("Jigsaw Puzzle", "Jigsaw Puzzles"), ("Building Set", "Building Sets"),
        ("Board Game", "Board Games"), ("Plush Toy", "Plush Toys"),
    ),
    qualifiers=(
        "Accessories", "Premium", "Sets & Bundles", "Spare Parts", "For Kids", "Outdoor", "Compact",
        "Professional",
    ),
    lines=(
        "Compact", "Classic", "Pro", "Essential", "Urban", "Nordic", "Heritage", "Active", "Studio", "Eco",
        "Travel", "Deluxe", "Everyday", "Summit", "Aero", "Vintage",
    ),
    order=("b", "l", "n", "s"),
    materials=(
        ("stainless steel", "stainless steel"), ("beech wood", "beech wood"),
        ("recycled plastic", "recycled plastic"), ("organic cotton", "organic cotton"),
        ("aluminium", "aluminium"), ("ceramic", "ceramic"), ("bamboo", "bamboo"),
        ("merino wool", "merino wool"),
    ),
    openers=(
        "is designed for people who want reliable quality every single day.",
        "brings together clean design &amp; honest materials.",
        "is our customers&#8217; favourite in this range &ndash; and it&#8217;s easy to see why.",
        "was developed with feedback from hundreds of everyday users.",
        "combines a timeless look with &quot;built to last&quot; engineering.",
    ),
    bodies=(
        "The body is made from {m}, so it stays sturdy for years.",
        "Every piece is checked by hand before it leaves our workshop.",
        "It&#8217;s light enough to carry around, yet solid enough for daily use.",
        "Cleaning is simple: wipe it down with a damp cloth &amp; let it dry.",
        "The finish is inspired by classic caf&eacute; furniture.",
        "Thoughtful details make the difference in everyday handling.",
        "We chose {m} because it ages beautifully and is easy to care for.",
        "Customers describe it as &quot;exactly what I needed&quot;.",
        "Compact dimensions mean it fits into small spaces without fuss.",
        "The packaging is 100&nbsp;% recyclable &ndash; no plastic foam inside.",
    ),
    features=(
        "Durable {m} construction", "Easy to clean", "Two-year manufacturer warranty",
        "Ships within 24 hours", "Designed in Europe", "Tested for safety &amp; durability",
        "Lightweight &ndash; ideal for travel", "Gift-ready packaging",
    ),
    closers=(
        "Order today and enjoy free returns within 30 days.",
        "Questions? Our support team is happy to help.",
        "Pair it with other items from the same range for a consistent look.",
        "Note: colours may vary slightly from the photos.", "Limited stock &ndash; don&#8217;t miss out!",
    ),
    labels=("Material", "Weight", "Warranty"),
    warranty=("1 year", "2 years", "3 years"),
    stock=("Out Of Stock", "2-3 Days", "In Stock", "Pre-Order"),
    options=("Size", "Color", "Gift Wrap", "Engraving"),
    colors=("Black", "White", "Red", "Blue", "Green", "Grey", "Beige", "Yellow"),
    gifts=("Gift box", "Greeting card"),
    attributes=("Material", "Warranty"),
    groups=("Default", "Wholesale"),
    blurb="Discover our hand-picked selection of {c} &ndash; quality you can rely on.",
)

_DE = _Words(
    name="Deutsch",
    flag="de.png",
    departments=(
        "Küche & Esszimmer", "Elektronik", "Wohnen", "Sport & Outdoor", "Mode", "Büro & Schreibwaren",
        "Garten", "Spielwaren",
    ),
    subcategories=(
        ("Kaffeemühle", "Kaffeemühlen"), ("Wasserkocher", "Wasserkocher"), ("Kochmesser", "Kochmesser"),
        ("Bratpfanne", "Bratpfannen"), ("Kopfhörer", "Kopfhörer"),
        ("Bluetooth-Lautsprecher", "Bluetooth-Lautsprecher"), ("Monitor", "Monitore"),
        ("Powerbank", "Powerbanks"), ("Tischleuchte", "Tischleuchten"), ("Kissen", "Kissen"),
        ("Wanduhr", "Wanduhren"), ("Aufbewahrungskorb", "Aufbewahrungskörbe"), ("Laufschuh", "Laufschuhe"),
        ("Yogamatte", "Yogamatten"), ("Trinkflasche", "Trinkflaschen"),
        ("Wanderrucksack", "Wanderrucksäcke"), ("T-Shirt", "T-Shirts"),
        ("Kapuzenpullover", "Kapuzenpullover"), ("Regenjacke", "Regenjacken"), ("Schal", "Schals"),
        ("Notizbuch", "Notizbücher"), ("Schreibtisch-Organizer", "Schreibtisch-Organizer"),
        ("Bürostuhl", "Bürostühle"), ("Füllfederhalter", "Füllfederhalter"),
        ("Gartenschlauch", "Gartenschläuche"), ("Gartenschere", "Gartenscheren"),
        ("Pflanzkübel", "Pflanzkübel"), ("Gießkanne", "Gießkannen"), ("Puzzle", "Puzzles"),
        ("Bauset", "Bausets"), ("Brettspiel", "Brettspiele"), ("Plüschtier", "Plüschtiere"),
    ),
    qualifiers=(
        "Zubehör", "Premium", "Sets & Bundles", "Ersatzteile", "Für Kinder", "Outdoor", "Kompakt", "Profi",
    ),
    lines=(
        "Kompakt", "Klassik", "Pro", "Basic", "Urban", "Nordic", "Heritage", "Aktiv", "Studio", "Eco",
        "Reise", "Deluxe", "Alltag", "Summit", "Aero", "Vintage",
    ),
    order=("b", "n", "l", "s"),
    materials=(
        ("Edelstahl", "Edelstahl"), ("Buchenholz", "Buchenholz"),
        ("Recycling-Kunststoff", "Recycling-Kunststoff"), ("Bio-Baumwolle", "Bio-Baumwolle"),
        ("Aluminium", "Aluminium"), ("Keramik", "Keramik"), ("Bambus", "Bambus"),
        ("Merinowolle", "Merinowolle"),
    ),
    openers=(
        "ist f&uuml;r alle gemacht, die jeden Tag auf verl&auml;ssliche Qualit&auml;t setzen.",
        "verbindet klares Design &amp; ehrliche Materialien.",
        "ist der Liebling unserer Kundinnen und Kunden &ndash; und das aus gutem Grund.",
        "wurde mit dem Feedback hunderter Nutzer entwickelt.",
        "kombiniert zeitlose Optik mit &bdquo;langlebiger&ldquo; Technik.",
    ),
    bodies=(
        "Das Geh&auml;use besteht aus {m} und bleibt so jahrelang stabil.",
        "Jedes Stück wird vor dem Versand von Hand geprüft.",
        "Leicht genug für unterwegs und robust genug für den Alltag.",
        "Die Reinigung ist einfach: feucht abwischen &amp; trocknen lassen.",
        "Das Finish ist vom klassischen Caf&eacute;-Mobiliar inspiriert.",
        "Wir verwenden {m}, weil es schön altert und pflegeleicht ist.",
        "Kunden beschreiben es als &quot;genau das Richtige&quot;.",
        "Dank kompakter Ma&szlig;e passt es auch in kleine Räume.",
        "Die Verpackung ist zu 100&nbsp;% recycelbar.",
    ),
    features=(
        "Robuste Verarbeitung aus {m}", "Leicht zu reinigen", "Zwei Jahre Herstellergarantie",
        "Versand innerhalb von 24 Stunden", "In Europa entworfen",
        "Auf Sicherheit &amp; Haltbarkeit geprüft", "Leicht &ndash; ideal für Reisen",
        "Geschenkfertig verpackt",
    ),
    closers=(
        "Heute bestellen und 30 Tage kostenlos zurückgeben.",
        "Fragen? Unser Support-Team hilft gerne weiter.",
        "Hinweis: Farben können leicht von den Fotos abweichen.",
        "Nur noch begrenzt verfügbar &ndash; schnell zugreifen!",
    ),
    labels=("Material", "Gewicht", "Garantie"),
    warranty=("1 Jahr", "2 Jahre", "3 Jahre"),
    stock=("Nicht vorrätig", "2-3 Tage", "Auf Lager", "Vorbestellung"),
    options=("Größe", "Farbe", "Geschenkverpackung", "Gravur"),
    colors=("Schwarz", "Weiß", "Rot", "Blau", "Grün", "Grau", "Beige", "Gelb"),
    gifts=("Geschenkbox", "Grußkarte"),
    attributes=("Material", "Garantie"),
    groups=("Standard", "Großhandel"),
    blurb="Entdecken Sie unsere handverlesene Auswahl an {c} &ndash; Qualit&auml;t, auf die Verlass ist.",
)

_FR = _Words(
    name="Français",
    flag="fr.png",
    departments=(
        "Cuisine & Salle à manger", "Électronique", "Maison & Déco", "Sport & Plein air", "Mode",
        "Bureau & Papeterie", "Jardin", "Jeux & Jouets",
    ),
    subcategories=(
        ("Moulin à café", "Moulins à café"), ("Bouilloire", "Bouilloires"),
        ("Couteau de chef", "Couteaux de chef"), ("Poêle", "Poêles"), ("Casque audio", "Casques audio"),
        ("Enceinte Bluetooth", "Enceintes Bluetooth"), ("Écran", "Écrans"),
        ("Batterie externe", "Batteries externes"), ("Lampe de table", "Lampes de table"),
        ("Coussin", "Coussins"), ("Horloge murale", "Horloges murales"),
        ("Panier de rangement", "Paniers de rangement"), ("Chaussure de running", "Chaussures de running"),
        ("Tapis de yoga", "Tapis de yoga"), ("Gourde", "Gourdes"),
        ("Sac à dos de randonnée", "Sacs à dos de randonnée"), ("T-shirt", "T-shirts"),
        ("Sweat à capuche", "Sweats à capuche"), ("Veste de pluie", "Vestes de pluie"),
        ("Écharpe", "Écharpes"), ("Carnet", "Carnets"), ("Organiseur de bureau", "Organiseurs de bureau"),
        ("Chaise de bureau", "Chaises de bureau"), ("Stylo plume", "Stylos plume"),
        ("Tuyau d'arrosage", "Tuyaux d'arrosage"), ("Sécateur", "Sécateurs"), ("Jardinière", "Jardinières"),
        ("Arrosoir", "Arrosoirs"), ("Puzzle", "Puzzles"), ("Jeu de construction", "Jeux de construction"),
        ("Jeu de société", "Jeux de société"), ("Peluche", "Peluches"),
    ),
    qualifiers=(
        "Accessoires", "Premium", "Lots & Coffrets", "Pièces détachées", "Pour enfants", "Extérieur",
        "Compact", "Professionnel",
    ),
    lines=(
        "Compact", "Classique", "Pro", "Essentiel", "Urbain", "Nordique", "Héritage", "Actif", "Studio",
        "Éco", "Voyage", "Deluxe", "Quotidien", "Sommet", "Aéro", "Vintage",
    ),
    order=("n", "b", "l", "s"),
    materials=(
        ("acier inoxydable", "acier inoxydable"), ("bois de hêtre", "bois de hêtre"),
        ("plastique recyclé", "plastique recyclé"), ("coton bio", "coton bio"), ("aluminium", "aluminium"),
        ("céramique", "céramique"), ("bambou", "bambou"), ("laine mérinos", "laine mérinos"),
    ),
    openers=(
        "est con&ccedil;u pour celles et ceux qui veulent une qualit&eacute; fiable au quotidien.",
        "allie un design épuré &amp; des matériaux honnêtes.",
        "est le favori de nos clients &ndash; et ce n&#8217;est pas un hasard.",
        "a été développé avec les retours de centaines d&#8217;utilisateurs.",
    ),
    bodies=(
        "Le corps est fabriqué en {m} pour rester solide pendant des années.",
        "Chaque pièce est contrôlée à la main avant l&#8217;expédition.",
        "Assez léger pour l&#8217;emporter partout, assez robuste pour un usage quotidien.",
        "Entretien facile : un chiffon humide &amp; c&#8217;est propre.",
        "Nous avons choisi le matériau {m}, qui vieillit avec élégance.",
        "Nos clients le décrivent comme &laquo;&nbsp;exactement ce qu&#8217;il me fallait&nbsp;&raquo;.",
        "Ses dimensions compactes lui permettent de trouver sa place partout.",
    ),
    features=(
        "Fabrication robuste en {m}", "Facile à nettoyer", "Garantie fabricant de deux ans",
        "Expédié sous 24&nbsp;heures", "Conçu en Europe", "Testé pour la sécurité &amp; la durabilité",
    ),
    closers=(
        "Commandez aujourd&#8217;hui et profitez du retour gratuit sous 30 jours.",
        "Une question ? Notre service client vous répond volontiers.",
        "Remarque : les couleurs peuvent légèrement varier.",
    ),
    labels=("Matière", "Poids", "Garantie"),
    warranty=("1 an", "2 ans", "3 ans"),
    stock=("Rupture de stock", "2-3 jours", "En stock", "Précommande"),
    options=("Taille", "Couleur", "Emballage cadeau", "Gravure"),
    colors=("Noir", "Blanc", "Rouge", "Bleu", "Vert", "Gris", "Beige", "Jaune"),
    gifts=("Coffret cadeau", "Carte de vœux"),
    attributes=("Matière", "Garantie"),
    groups=("Par défaut", "Grossiste"),
    blurb="Découvrez notre sélection de {c} &ndash; une qualit&eacute; sur laquelle compter.",
)

_ES = _Words(
    name="Español",
    flag="es.png",
    departments=(
        "Cocina & Comedor", "Electrónica", "Hogar", "Deportes & Aire libre", "Moda", "Oficina & Papelería",
        "Jardín", "Juguetes & Juegos",
    ),
    subcategories=(
        ("Molinillo de café", "Molinillos de café"), ("Hervidor", "Hervidores"),
        ("Cuchillo de chef", "Cuchillos de chef"), ("Sartén", "Sartenes"), ("Auriculares", "Auriculares"),
        ("Altavoz Bluetooth", "Altavoces Bluetooth"), ("Monitor", "Monitores"),
        ("Batería externa", "Baterías externas"), ("Lámpara de mesa", "Lámparas de mesa"),
        ("Cojín", "Cojines"), ("Reloj de pared", "Relojes de pared"),
        ("Cesta de almacenaje", "Cestas de almacenaje"), ("Zapatilla de running", "Zapatillas de running"),
        ("Esterilla de yoga", "Esterillas de yoga"), ("Botella de agua", "Botellas de agua"),
        ("Mochila de senderismo", "Mochilas de senderismo"), ("Camiseta", "Camisetas"),
        ("Sudadera con capucha", "Sudaderas con capucha"),
        ("Chaqueta impermeable", "Chaquetas impermeables"), ("Bufanda", "Bufandas"),
        ("Cuaderno", "Cuadernos"), ("Organizador de escritorio", "Organizadores de escritorio"),
        ("Silla de oficina", "Sillas de oficina"), ("Pluma estilográfica", "Plumas estilográficas"),
        ("Manguera de jardín", "Mangueras de jardín"), ("Tijeras de podar", "Tijeras de podar"),
        ("Maceta", "Macetas"), ("Regadera", "Regaderas"), ("Puzle", "Puzles"),
        ("Juego de construcción", "Juegos de construcción"), ("Juego de mesa", "Juegos de mesa"),
        ("Peluche", "Peluches"),
    ),
    qualifiers=(
        "Accesorios", "Premium", "Packs & Lotes", "Recambios", "Para niños", "Exterior", "Compacto",
        "Profesional",
    ),
    lines=(
        "Compacto", "Clásico", "Pro", "Esencial", "Urbano", "Nórdico", "Herencia", "Activo", "Estudio",
        "Eco", "Viaje", "Deluxe", "Diario", "Cumbre", "Aero", "Vintage",
    ),
    order=("n", "b", "l", "s"),
    materials=(
        ("acero inoxidable", "acero inoxidable"), ("madera de haya", "madera de haya"),
        ("plástico reciclado", "plástico reciclado"), ("algodón orgánico", "algodón orgánico"),
        ("aluminio", "aluminio"), ("cerámica", "cerámica"), ("bambú", "bambú"),
        ("lana merino", "lana merino"),
    ),
    openers=(
        "est&aacute; pensado para quienes buscan calidad fiable cada d&iacute;a.",
        "combina un diseño limpio &amp; materiales honestos.",
        "es el favorito de nuestros clientes &ndash; y no es casualidad.",
        "se desarrolló con la opinión de cientos de usuarios.",
    ),
    bodies=(
        "El cuerpo está fabricado con {m}, por lo que se mantiene firme durante años.",
        "Cada pieza se revisa a mano antes de salir del taller.",
        "Es ligero para llevarlo a todas partes y resistente para el uso diario.",
        "Limpieza sencilla: pasa un paño húmedo &amp; deja secar.",
        "Usamos {m} porque envejece de forma bonita y es fácil de cuidar.",
        "Nuestros clientes lo describen como &quot;justo lo que necesitaba&quot;.",
        "Sus dimensiones compactas permiten guardarlo en cualquier rincón.",
    ),
    features=(
        "Construcción resistente de {m}", "Fácil de limpiar", "Garantía del fabricante de dos años",
        "Envío en 24&nbsp;horas", "Diseñado en Europa", "Probado en seguridad &amp; durabilidad",
    ),
    closers=(
        "Pide hoy y disfruta de devoluciones gratuitas durante 30 días.",
        "¿Preguntas? Nuestro equipo de soporte te ayuda encantado.",
        "Nota: los colores pueden variar ligeramente respecto a las fotos.",
    ),
    labels=("Material", "Peso", "Garantía"),
    warranty=("1 año", "2 años", "3 años"),
    stock=("Agotado", "2-3 días", "En stock", "Reserva"),
    options=("Talla", "Color", "Envoltorio de regalo", "Grabado"),
    colors=("Negro", "Blanco", "Rojo", "Azul", "Verde", "Gris", "Beige", "Amarillo"),
    gifts=("Caja de regalo", "Tarjeta de felicitación"),
    attributes=("Material", "Garantía"),
    groups=("Predeterminado", "Mayorista"),
    blurb="Descubre nuestra selección de {c} &ndash; calidad en la que puedes confiar.",
)

_RU = _Words(
    name="Русский",
    flag="ru.png",
    departments=(
        "Кухня и столовая", "Электроника", "Дом и интерьер", "Спорт и отдых", "Мода", "Офис и канцелярия",
        "Сад", "Игрушки и игры",
    ),
    subcategories=(
        ("Кофемолка", "Кофемолки"), ("Чайник", "Чайники"), ("Поварской нож", "Поварские ножи"),
        ("Сковорода", "Сковороды"), ("Наушники", "Наушники"), ("Bluetooth-колонка", "Bluetooth-колонки"),
        ("Монитор", "Мониторы"), ("Внешний аккумулятор", "Внешние аккумуляторы"),
        ("Настольная лампа", "Настольные лампы"), ("Подушка", "Подушки"),
        ("Настенные часы", "Настенные часы"), ("Корзина для хранения", "Корзины для хранения"),
        ("Беговые кроссовки", "Беговые кроссовки"), ("Коврик для йоги", "Коврики для йоги"),
        ("Бутылка для воды", "Бутылки для воды"), ("Туристический рюкзак", "Туристические рюкзаки"),
        ("Футболка", "Футболки"), ("Толстовка", "Толстовки"), ("Дождевик", "Дождевики"), ("Шарф", "Шарфы"),
        ("Блокнот", "Блокноты"), ("Органайзер для стола", "Органайзеры для стола"),
        ("Офисное кресло", "Офисные кресла"), ("Перьевая ручка", "Перьевые ручки"),
        ("Садовый шланг", "Садовые шланги"), ("Секатор", "Секаторы"), ("Кашпо", "Кашпо"), ("Лейка", "Лейки"),
        ("Пазл", "Пазлы"), ("Конструктор", "Конструкторы"), ("Настольная игра", "Настольные игры"),
        ("Мягкая игрушка", "Мягкие игрушки"),
    ),
    qualifiers=(
        "Аксессуары", "Премиум", "Наборы и комплекты", "Запчасти", "Для детей", "Для улицы", "Компактные",
        "Профессиональные",
    ),
    lines=(
        "Компакт", "Классик", "Про", "Эссеншл", "Урбан", "Нордик", "Херитейдж", "Актив", "Студио", "Эко",
        "Тревел", "Делюкс", "Эвридэй", "Саммит", "Аэро", "Винтаж",
    ),
    order=("n", "b", "l", "s"),
    materials=(
        ("нержавеющая сталь", "нержавеющей стали"), ("буковая древесина", "буковой древесины"),
        ("переработанный пластик", "переработанного пластика"),
        ("органический хлопок", "органического хлопка"), ("алюминий", "алюминия"), ("керамика", "керамики"),
        ("бамбук", "бамбука"), ("шерсть мериноса", "шерсти мериноса"),
    ),
    openers=(
        "создан для тех, кто ценит надёжное качество каждый день.",
        "сочетает лаконичный дизайн &amp; честные материалы.",
        "&ndash; любимая модель наших покупателей, и это не случайно.",
        "разработан с учётом отзывов сотен пользователей.",
    ),
    bodies=(
        "Корпус выполнен из {m} и остаётся прочным долгие годы.",
        "Каждое изделие проверяется вручную перед отправкой.",
        "Достаточно лёгкий, чтобы брать с собой, и достаточно прочный для ежедневного использования.",
        "Уход простой: протрите влажной тканью &amp; дайте высохнуть.",
        "Изделие из {m} красиво стареет и легко в уходе.",
        "Покупатели называют его &laquo;именно тем, что нужно&raquo;.",
        "Компактные размеры позволяют разместить его даже в небольшом помещении.",
    ),
    features=(
        "Прочная конструкция из {m}", "Легко чистить", "Гарантия производителя 2 года",
        "Отправка в течение 24&nbsp;часов", "Разработано в Европе",
        "Проверено на безопасность &amp; долговечность",
    ),
    closers=(
        "Закажите сегодня &ndash; бесплатный возврат в течение 30 дней.",
        "Есть вопросы? Наша служба поддержки с радостью поможет.",
        "Обратите внимание: цвет может немного отличаться от фотографий.",
    ),
    labels=("Материал", "Вес", "Гарантия"),
    warranty=("1 год", "2 года", "3 года"),
    stock=("Нет в наличии", "2-3 дня", "В наличии", "Предзаказ"),
    options=("Размер", "Цвет", "Подарочная упаковка", "Гравировка"),
    colors=("Чёрный", "Белый", "Красный", "Синий", "Зелёный", "Серый", "Бежевый", "Жёлтый"),
    gifts=("Подарочная коробка", "Открытка"),
    attributes=("Материал", "Гарантия"),
    groups=("По умолчанию", "Оптовый"),
    blurb="Откройте для себя нашу подборку: {c} &ndash; качество, на которое можно положиться.",
)
# fmt: on

_WORDS: dict[str, _Words] = {"en": _EN, "de": _DE, "fr": _FR, "es": _ES, "ru": _RU}
SUPPORTED_LANGUAGES: tuple[str, ...] = tuple(_WORDS)
"""Two-letter language prefixes the generator has word lists for (``en-gb``, ``de-de``, ``fr-fr``, ...)."""

_DEFAULT_COUNTRY = {"en": "gb", "de": "de", "fr": "fr", "es": "es", "ru": "ru"}
_BRAND_HEADS = (
    "Nord",
    "Kest",
    "Alva",
    "Bright",
    "Luma",
    "Oster",
    "Vel",
    "Tark",
    "Sol",
    "Brem",
    "Hal",
    "Quill",
    "Ferro",
    "Mira",
    "Cobal",
    "Dun",
    "Elk",
    "Gran",
    "Ivo",
    "Jor",
    "Lark",
    "Marl",
    "Pell",
    "Rond",
    "Sable",
    "Thorn",
)
_BRAND_TAILS = ("vik", "rel", "moor", "ton", "ex", "ora", "berg", "line", "wood", "craft", "port", "ana")
_MESSY_BRANDS = ("Baum & Söhne", "Kestrel Co. ", "")
_SUFFIXES = ("X200", "Mk II", "2.0", "S", "Plus", "Max", "Lite", "3", "V2", "XL", "Mini", "One", "Go", "Air")
_INCH_SUBCATEGORIES = frozenset({6})  # monitors get a screen size like 27" in the name
_SIZE_SUBCATEGORIES = frozenset({12, 16, 17, 18})  # running shoes, t-shirts, hoodies, rain jackets
_FASHION = 4

_STOCK_IDS = (5, 6, 7, 8)  # out of stock, 2-3 days, in stock, pre-order (OpenCart's default ids)
_OPT_SIZE, _OPT_COLOR, _OPT_GIFT, _OPT_ENGRAVING = 1, 2, 3, 4
_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
_COLOR_VALUE_BASE = len(_SIZES) + 1
_GIFT_VALUE_BASE = _COLOR_VALUE_BASE + 8
_CURRENCIES = (
    (1, "US Dollar", "USD", "$", "", 1.0, 1),
    (2, "Euro", "EUR", "", "€", 0.92130001, 1),
    (3, "Pound Sterling", "GBP", "£", "", 0.78710002, 1),
    (4, "Swiss Franc", "CHF", "CHF ", "", 0.88420001, 0),
)
_EPOCH = np.datetime64("2018-01-01T00:00:00", "s")
_ADDED_SPAN_S = int((np.datetime64("2025-12-31T00:00:00", "s") - _EPOCH).astype(np.int64))
_MODIFIED_CAP = np.datetime64("2026-06-30T23:59:59", "s")
_ZERO_DATE = "0000-00-00"
_ZERO_DATETIME = "0000-00-00 00:00:00"
_SCRIPT = (
    '<script type="text/javascript">window.dataLayer = window.dataLayer || []; '
    'dataLayer.push({"event": "view_item"});</script>'
)
_STYLE = "<style>.promo-badge { color: #c0392b; font-weight: bold; }</style>"
_HTML_ENCODE = (["&", "<", ">", '"'], ["&amp;", "&lt;", "&gt;", "&quot;"])

# fmt: off
_CYRILLIC = str.maketrans(
    {
        "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z", "и": "i",
        "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
        "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y",
        "ь": "",
        "э": "e", "ю": "yu", "я": "ya", "ß": "ss",
    }
)
# fmt: on


def _slug(text: str) -> str:
    """URL keyword of a word or name: transliterated, ASCII, lowercase, dash-separated."""
    folded = unicodedata.normalize("NFKD", html.unescape(text).lower().translate(_CYRILLIC))
    return re.sub(r"[^a-z0-9]+", "-", folded.encode("ascii", "ignore").decode()).strip("-")


def _encode(text: str) -> str:
    """PHP ``htmlspecialchars`` (ENT_COMPAT), as OpenCart's request filter applies it to every input."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _encode_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorized :func:`_encode` (one Aho-Corasick pass, so replaced text is never re-scanned)."""
    return expr.str.replace_many(_HTML_ENCODE[0], _HTML_ENCODE[1])


def _html_text(text: str) -> str:
    """Escape plain text for use inside HTML (what a WYSIWYG editor would write)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ------------------------------------------------------------------------------------------------ languages


@dataclass(frozen=True)
class _Language:
    """One shop language with its word pools as polars Series (aligned with the random draws)."""

    language_id: int
    code: str
    key: str
    words: _Words
    openers: pl.Series
    bodies: pl.Series
    features: pl.Series
    closers: pl.Series
    plain_openers: pl.Series
    plain_bodies: pl.Series
    plain_features: pl.Series
    plain_closers: pl.Series
    nouns: pl.Series
    noun_slugs: pl.Series
    lines: pl.Series
    line_slugs: pl.Series
    departments: pl.Series
    materials: pl.Series
    warranty: pl.Series

    @classmethod
    def build(cls, language_id: int, code: str) -> _Language:
        """Prepare the pools of one language code such as ``de-de``."""
        key = code.split("-", maxsplit=1)[0].lower()
        words = _WORDS.get(key)
        if words is None:
            raise ValueError(
                f"no word lists for language {code!r}; supported prefixes: {', '.join(SUPPORTED_LANGUAGES)}"
            )
        phrases = [phrase for _, phrase in words.materials]

        def expand(templates: tuple[str, ...]) -> list[str]:
            return [t.replace("{m}", m) for t in templates for m in phrases]

        def plain(items: list[str]) -> pl.Series:
            return pl.Series([html.unescape(s) for s in items], dtype=pl.Utf8)

        bodies, features = expand(words.bodies), expand(words.features)
        return cls(
            language_id=language_id,
            code=code,
            key=key,
            words=words,
            openers=pl.Series(list(words.openers), dtype=pl.Utf8),
            bodies=pl.Series(bodies, dtype=pl.Utf8),
            features=pl.Series(features, dtype=pl.Utf8),
            closers=pl.Series(list(words.closers), dtype=pl.Utf8),
            plain_openers=plain(list(words.openers)),
            plain_bodies=plain(bodies),
            plain_features=plain(features),
            plain_closers=plain(list(words.closers)),
            nouns=pl.Series([s for s, _ in words.subcategories], dtype=pl.Utf8),
            noun_slugs=pl.Series([_slug(s) for s, _ in words.subcategories], dtype=pl.Utf8),
            lines=pl.Series(list(words.lines), dtype=pl.Utf8),
            line_slugs=pl.Series([_slug(s) for s in words.lines], dtype=pl.Utf8),
            departments=pl.Series(list(words.departments), dtype=pl.Utf8),
            materials=pl.Series([m for m, _ in words.materials], dtype=pl.Utf8),
            warranty=pl.Series(list(words.warranty), dtype=pl.Utf8),
        )

    @property
    def locale_string(self) -> str:
        """OpenCart's ``locale`` column: comma-separated setlocale() candidates."""
        parts = self.code.split("-")
        country = (parts[1] if len(parts) > 1 else _DEFAULT_COUNTRY[self.key]).upper()
        return f"{self.key}-{country},{self.key}_{country}.UTF-8,{self.key}_{country},{self.code}"


def _languages(codes: Sequence[str]) -> list[_Language]:
    if not codes:
        raise ValueError("at least one language is required")
    normalized = [c.strip().lower() for c in codes]
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"duplicate language codes in {list(codes)!r}")
    return [_Language.build(i + 1, code) for i, code in enumerate(normalized)]


# ------------------------------------------------------------------------------------------------ catalog


@dataclass(frozen=True)
class _Catalog:
    """The shop-wide structure every product chunk draws from."""

    category_id: np.ndarray
    parent_id: np.ndarray
    level: np.ndarray
    subcategory: np.ndarray  # subcategory index (0..31) for level >= 1, -1 for departments
    department: np.ndarray
    qualifier: np.ndarray  # qualifier index for level 2, -1 otherwise
    disabled: int  # category id of the one disabled category, 0 when none
    leaf_index: np.ndarray  # rows of the arrays above that products are assigned to
    brands: list[str]
    brand_weights: np.ndarray
    brand_codes: list[str]

    def path(self, row: int) -> list[int]:
        """Category ids from the top to the category at ``row``."""
        ids: list[int] = []
        current = row
        while current >= 0:
            ids.append(int(self.category_id[current]))
            parent = int(self.parent_id[current])
            current = parent - 1 if parent else -1
        return ids[::-1]

    def name(self, row: int, words: _Words) -> str:
        """Plain (not entity-encoded) category name in one language."""
        if self.level[row] == 0:
            return words.departments[int(self.department[row])]
        if self.level[row] == 1:
            return words.subcategories[int(self.subcategory[row])][1]
        return words.qualifiers[int(self.qualifier[row])]


def _build_catalog(products: int, rng: np.random.Generator) -> _Catalog:
    n_dept, n_sub, n_qual = 8, 32, 8
    level3 = int(np.clip(products // 50, 0, 160))
    pairs = np.sort(rng.choice(n_sub * n_qual, size=level3, replace=False)) if level3 else np.zeros(0, np.int64)
    dept = np.concatenate([np.arange(n_dept), np.arange(n_sub) // 4, (pairs // n_qual) // 4])
    sub = np.concatenate([np.full(n_dept, -1), np.arange(n_sub), pairs // n_qual])
    qual = np.concatenate([np.full(n_dept + n_sub, -1), pairs % n_qual])
    level = np.concatenate([np.zeros(n_dept, np.int64), np.ones(n_sub, np.int64), np.full(level3, 2)])
    category_id = np.arange(1, len(level) + 1)
    parent = np.concatenate([np.zeros(n_dept, np.int64), np.arange(n_sub) // 4 + 1, n_dept + 1 + pairs // n_qual])
    disabled = int(category_id[n_dept + n_sub + int(rng.integers(level3))]) if level3 else 0

    n_brands = int(np.clip(12 + products // 2500, 12, 80))
    combos = [h + t for h in _BRAND_HEADS for t in _BRAND_TAILS]
    picked = rng.choice(len(combos), size=n_brands - len(_MESSY_BRANDS), replace=False)
    brands = [combos[int(i)] for i in picked] + list(_MESSY_BRANDS)
    normal = n_brands - len(_MESSY_BRANDS)
    ranks = np.concatenate([rng.permutation(normal), normal + rng.permutation(len(_MESSY_BRANDS))])
    weights = 1.0 / np.power(ranks + 1.0, 0.8)
    codes = [(_slug(b).replace("-", "")[:3] or "gen").upper() for b in brands]
    return _Catalog(
        category_id=category_id,
        parent_id=parent,
        level=level,
        subcategory=sub,
        department=dept,
        qualifier=qual,
        disabled=disabled,
        leaf_index=np.flatnonzero(level >= 1),
        brands=brands,
        brand_weights=weights / weights.sum(),
        brand_codes=codes,
    )


# ------------------------------------------------------------------------------------------------ database


def _prepare_database(url: str) -> tuple[sa.Engine, str]:
    """Return an engine for ``url`` (creating the SQLite folder or the MariaDB database) and its backend."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return sa.create_engine(parsed), "sqlite"
    if backend in {"mysql", "mariadb"}:
        if parsed.database:
            server = sa.create_engine(parsed.set(database=""))
            try:
                with server.begin() as conn:
                    quoted = server.dialect.identifier_preparer.quote(parsed.database)
                    charset = "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    conn.exec_driver_sql(f"CREATE DATABASE IF NOT EXISTS {quoted} {charset}")
            finally:
                server.dispose()
        return sa.create_engine(parsed), "mysql"
    raise ValueError(f"unsupported database backend {backend!r}: use sqlite:/// or mysql+pymysql://")


class _Writer:
    """Bulk inserts through the DBAPI connection: ``executemany`` per table, one transaction per chunk."""

    def __init__(self, engine: sa.Engine, backend: str, metadata: sa.MetaData) -> None:
        self._metadata = metadata
        self._quote = engine.dialect.identifier_preparer.quote
        self._mark = "?" if backend == "sqlite" else "%s"
        self._batch = 1_000_000 if backend == "sqlite" else 20_000
        self._conn = engine.raw_connection()
        self._cursor = self._conn.cursor()
        self.rows: dict[str, int] = {}
        if backend == "sqlite":
            for pragma in (
                "journal_mode = OFF",
                "synchronous = OFF",
                "temp_store = MEMORY",
                "cache_size = -262144",
            ):
                self._cursor.execute(f"PRAGMA {pragma}")
        else:
            self._cursor.execute("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
            self._cursor.execute("SET SESSION unique_checks = 0")

    def insert(self, table: str, frame: pl.DataFrame) -> None:
        """Insert every row of ``frame`` (column names are the table's column names)."""
        known = self._metadata.tables[table].columns
        unknown = [c for c in frame.columns if c not in known]
        if unknown:
            raise ValueError(f"{table} has no column(s) {unknown}")
        self.rows[table] = self.rows.get(table, 0) + frame.height
        if frame.is_empty():
            return
        columns = ", ".join(self._quote(c) for c in frame.columns)
        marks = ", ".join([self._mark] * frame.width)
        sql = f"INSERT INTO {self._quote(table)} ({columns}) VALUES ({marks})"
        for offset in range(0, frame.height, self._batch):
            self._cursor.executemany(sql, frame.slice(offset, self._batch).rows())

    def commit(self) -> None:
        """Commit the current transaction."""
        self._conn.commit()

    def close(self) -> None:
        """Close the cursor and give the connection back."""
        self._cursor.close()
        self._conn.close()


def _create_schema(engine: sa.Engine, metadata: sa.MetaData) -> None:
    """Drop and re-create the catalog tables, without their secondary indexes (created after the load)."""
    metadata.drop_all(engine)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            conn.execute(sa.schema.CreateTable(table))


def _create_indexes(engine: sa.Engine, metadata: sa.MetaData) -> None:
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            for index in table.indexes:
                index.create(conn)


# ------------------------------------------------------------------------------------------------ helpers


def _pick(rng: np.random.Generator, n: int, probs: Sequence[float]) -> np.ndarray:
    """Draw ``n`` category indices with the given probabilities."""
    p = np.asarray(probs, dtype=np.float64)
    return rng.choice(len(p), size=n, p=p / p.sum())


def _dates(days: np.ndarray) -> pl.Series:
    """``YYYY-MM-DD`` strings for day offsets from 1970-01-01."""
    return pl.Series(np.datetime_as_string(days.astype("datetime64[D]"), unit="D"), dtype=pl.Utf8)


def _datetimes(values: np.ndarray) -> pl.Series:
    """``YYYY-MM-DD HH:MM:SS`` strings for datetime64[s] values."""
    text = np.char.replace(np.datetime_as_string(values.astype("datetime64[s]"), unit="s"), "T", " ")
    return pl.Series(text, dtype=pl.Utf8)


def _day(text: str) -> int:
    return int(np.datetime64(text, "D").astype(np.int64))


def _within_group(counts: np.ndarray) -> np.ndarray:
    """Position of each exploded row within its group (0, 1, ... for every group of ``counts``)."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


def _mask_pick(rng: np.random.Generator, rows: int, values: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Random non-empty subsets of ``values`` items for ``rows`` rows: (row index, value index) pairs."""
    mask = rng.random((rows, values)) < share
    empty = np.flatnonzero(~mask.any(axis=1))
    mask[empty, rng.integers(0, values, len(empty))] = True
    row_index, value_index = np.nonzero(mask)
    return row_index, value_index


def _money(values: np.ndarray) -> np.ndarray:
    return np.round(values, 2)


# ------------------------------------------------------------------------------------------------ products


@dataclass
class _Ids:
    """Running primary keys across chunks."""

    special: int = 1
    discount: int = 1
    option: int = 1
    option_value: int = 1
    image: int = 1
    seo: int = 1


@dataclass(frozen=True)
class _Core:
    """Language-independent draws for one chunk of products (numpy arrays, one entry per product)."""

    pid: np.ndarray
    leaf: np.ndarray  # row into the catalog arrays
    sub: np.ndarray
    dept: np.ndarray
    brand: np.ndarray  # index into catalog.brands, -1 for manufacturer_id 0
    line: np.ndarray
    suffix: pl.Series
    material: np.ndarray
    price: np.ndarray
    quantity: np.ndarray
    stock_status: np.ndarray
    status: np.ndarray
    added: np.ndarray
    modified: np.ndarray
    weight: np.ndarray
    draws: np.ndarray  # uniform floats for the text pools, shape (n, 8)
    layout: np.ndarray  # booleans, shape (n, 8): list, table, closer, script, style, div, raw, tagged
    text_kind: np.ndarray  # 0 normal, 1 empty, 2 editor leftover
    messy_name: np.ndarray  # 0 clean, 1 leading/trailing spaces, 2 doubled space
    warranty: np.ndarray
    has_seo: np.ndarray


def _core(catalog: _Catalog, start: int, n: int, rng: np.random.Generator) -> _Core:
    pid = np.arange(start, start + n, dtype=np.int64)
    leaf = catalog.leaf_index[rng.integers(0, len(catalog.leaf_index), n)]
    sub = catalog.subcategory[leaf]
    brand = rng.choice(len(catalog.brands), size=n, p=catalog.brand_weights)
    brand[rng.random(n) < 0.04] = -1
    suffix_idx = rng.integers(0, len(_SUFFIXES), n)
    suffix = pl.Series(_SUFFIXES, dtype=pl.Utf8).gather(suffix_idx)
    inch = np.isin(sub, list(_INCH_SUBCATEGORIES)) & (rng.random(n) < 0.7)
    sizes = pl.Series(rng.choice([24, 27, 32, 34], size=n)).cast(pl.Utf8) + '"'
    suffix = (
        pl.DataFrame({"s": suffix, "z": sizes, "i": inch, "e": rng.random(n) < 0.55})
        .select(pl.when(pl.col("i")).then(pl.col("z")).when(pl.col("e")).then(None).otherwise(pl.col("s")))
        .to_series()
    )
    price = np.exp(rng.normal(3.7, 0.9, n))
    price = np.where(rng.random(n) < 0.5, np.floor(price) + 0.99, price)
    price = _money(np.clip(price, 0.99, 4999.0))
    price[rng.random(n) < 0.002] = 0.0
    quantity = rng.poisson(rng.choice([5, 40, 250], size=n, p=[0.3, 0.5, 0.2])).astype(np.int64)
    quantity[rng.random(n) < 0.12] = 0
    oversold = rng.random(n) < 0.005
    quantity[oversold] = -rng.integers(1, 4, int(oversold.sum()))
    added = _EPOCH + rng.integers(0, _ADDED_SPAN_S, n).astype("timedelta64[s]")
    room = np.minimum((_MODIFIED_CAP - added).astype(np.int64), 400 * 86400)
    modified = added + np.floor(rng.random(n) * room).astype(np.int64).astype("timedelta64[s]")
    return _Core(
        pid=pid,
        leaf=leaf,
        sub=sub,
        dept=catalog.department[leaf],
        brand=brand,
        line=rng.integers(0, 16, n),
        suffix=suffix,
        material=rng.integers(0, 8, n),
        price=price,
        quantity=quantity,
        stock_status=np.asarray(_STOCK_IDS)[_pick(rng, n, [0.2, 0.1, 0.6, 0.1])],
        status=(rng.random(n) >= 0.04).astype(np.int64),
        added=added,
        modified=modified,
        weight=np.round(np.exp(rng.normal(0.0, 1.0, n)), 2),
        draws=rng.random((n, 8)),
        layout=rng.random((n, 8)) < np.array([0.6, 0.25, 0.7, 0.015, 0.01, 0.2, 0.08, 0.65]),
        text_kind=_pick(rng, n, [0.97, 0.02, 0.01]),
        messy_name=_pick(rng, n, [0.97, 0.015, 0.015]),
        warranty=_pick(rng, n, [0.2, 0.6, 0.2]),
        has_seo=rng.random(n) >= 0.03,
    )


def _names(core: _Core, catalog: _Catalog, lang: _Language) -> pl.Series:
    """Clean plain-text product names in one language."""
    brands = pl.Series([b.strip() or None for b in catalog.brands] + [None], dtype=pl.Utf8)
    parts = {
        "b": brands.gather(np.where(core.brand < 0, len(catalog.brands), core.brand)),
        "l": lang.lines.gather(core.line),
        "n": lang.nouns.gather(core.sub),
        "s": core.suffix,
    }
    frame = pl.DataFrame(parts)
    return frame.select(
        pl.concat_str([pl.col(k) for k in lang.words.order], separator=" ", ignore_nulls=True)
    ).to_series()


def _slugs(core: _Core, catalog: _Catalog, lang: _Language) -> pl.Series:
    brand_slugs = pl.Series([_slug(b) or None for b in catalog.brands] + [None], dtype=pl.Utf8)
    frame = pl.DataFrame(
        {
            "b": brand_slugs.gather(np.where(core.brand < 0, len(catalog.brands), core.brand)),
            "l": lang.line_slugs.gather(core.line),
            "n": lang.noun_slugs.gather(core.sub),
            "id": pl.Series(core.pid).cast(pl.Utf8),
        }
    )
    order = [{"b": "b", "l": "l", "n": "n", "s": "id"}[k] for k in lang.words.order]
    return frame.select(pl.concat_str([pl.col(k) for k in order], separator="-", ignore_nulls=True)).to_series()


def _pool_index(draw: np.ndarray, size: int, offset: int = 0) -> np.ndarray:
    return (np.floor(draw * size).astype(np.int64) + offset) % size


def _html_descriptions(core: _Core, names: pl.Series, lang: _Language) -> pl.Series:
    """Entity-encoded (OpenCart-stored) HTML descriptions in one language."""
    words, m = lang.words, len(lang.words.materials)
    n_body, n_feat = len(words.bodies), len(words.features)
    d = core.draws
    cols: dict[str, Any] = {
        "name": names.str.replace_many(["&", "<", ">"], ["&amp;", "&lt;", "&gt;"]),
        "opener": lang.openers.gather(_pool_index(d[:, 0], len(words.openers))),
        "closer": lang.closers.gather(_pool_index(d[:, 1], len(words.closers))),
        "mat": lang.materials.gather(core.material),
        "war": lang.warranty.gather(core.warranty),
        "w": pl.Series(core.weight).cast(pl.Utf8),
    }
    for k in range(4):
        cols[f"b{k}"] = lang.bodies.gather(_pool_index(d[:, 2], n_body, k) * m + core.material)
    for k in range(3):
        cols[f"f{k}"] = lang.features.gather(_pool_index(d[:, 3], n_feat, k) * m + core.material)
    for k, flag in enumerate(("list", "table", "closing", "script", "style", "div", "raw")):
        cols[flag] = core.layout[:, k]
    cols["kind"] = core.text_kind
    frame = pl.DataFrame(cols)
    c = pl.col

    def optional(flag: str, *parts: pl.Expr | str) -> pl.Expr:
        piece = pl.concat_str([p if isinstance(p, pl.Expr) else pl.lit(p) for p in parts])
        return pl.when(c(flag)).then(piece).otherwise(pl.lit(""))

    crlf = "\r\n"
    body = pl.concat_str(
        [
            pl.concat_str([pl.lit("<p><strong>"), c("name"), pl.lit("</strong> "), c("opener"), pl.lit(" "), c("b0")]),
            pl.lit("</p>" + crlf + "<p>" + crlf + "\t"),
            pl.concat_str([c("b1"), c("b2"), c("b3")], separator=" "),
            pl.lit("</p>" + crlf),
            optional(
                "list",
                "<ul>" + crlf + "\t<li>",
                c("f0"),
                "</li>" + crlf + "\t<li>",
                c("f1"),
                "</li>" + crlf + "\t<li>",
                c("f2"),
                "</li>" + crlf + "</ul>" + crlf,
            ),
            optional(
                "table",
                '<table class="specs">' + crlf + f"\t<tr><th>{words.labels[0]}</th><td>",
                c("mat"),
                f"</td></tr>{crlf}\t<tr><th>{words.labels[1]}</th><td>",
                c("w"),
                f" kg</td></tr>{crlf}\t<tr><th>{words.labels[2]}</th><td>",
                c("war"),
                "</td></tr>" + crlf + "</table>" + crlf,
            ),
            optional("closing", "<p><em>", c("closer"), "</em></p>" + crlf),
            optional("script", _SCRIPT + crlf),
            optional("style", _STYLE + crlf),
        ]
    )
    wrapped = pl.when(c("div")).then(
        pl.concat_str([pl.lit('<div class="product-info">' + crlf), body, pl.lit("</div>")])
    )
    raw = (
        pl.when(c("kind") == 1)
        .then(pl.lit(""))
        .when(c("kind") == 2)
        .then(pl.lit("<p><br></p>"))
        .otherwise(wrapped.otherwise(body))
    )
    return frame.select(pl.when(c("raw")).then(raw).otherwise(_encode_expr(raw))).to_series()


def _plain_descriptions(core: _Core, names: pl.Series, lang: _Language) -> pl.Series:
    """Plain-text descriptions (for SyncProductInput files); null for the empty ones."""
    words, m = lang.words, len(lang.words.materials)
    d = core.draws
    parts = [names, lang.plain_openers.gather(_pool_index(d[:, 0], len(words.openers)))]
    parts += [
        lang.plain_bodies.gather(_pool_index(d[:, 2], len(words.bodies), k) * m + core.material) for k in range(4)
    ]
    frame = pl.DataFrame({f"p{i}": p for i, p in enumerate(parts)} | {"kind": core.text_kind})
    text = pl.concat_str([pl.col(f"p{i}") for i in range(len(parts))], separator=" ")
    return frame.select(pl.when(pl.col("kind") == 0).then(text).otherwise(None)).to_series()


def _messy(names: pl.Series, kind: np.ndarray) -> pl.Series:
    frame = pl.DataFrame({"n": names, "k": kind})
    c = pl.col
    return frame.select(
        pl.when(c("k") == 1)
        .then(pl.concat_str([pl.lit("  "), c("n"), pl.lit(" ")]))
        .when(c("k") == 2)
        .then(c("n").str.replace(" ", "  ", literal=True))
        .otherwise(c("n"))
    ).to_series()


def _product_rows(core: _Core, catalog: _Catalog, rng: np.random.Generator) -> pl.DataFrame:
    n = len(core.pid)
    dept_slug = [_slug(d) for d in _EN.departments]
    sub_slug = [_slug(s) for s, _ in _EN.subcategories]
    image = (
        pl.DataFrame(
            {
                "d": pl.Series(dept_slug).gather(core.dept),
                "s": pl.Series(sub_slug).gather(core.sub),
                "id": pl.Series(core.pid).cast(pl.Utf8),
                "kind": _pick(rng, n, [0.95, 0.02, 0.015, 0.015]),
                "sub": pl.Series([s for s, _ in _EN.subcategories]).gather(core.sub),
            }
        )
        .select(
            pl.when(pl.col("kind") == 0)
            .then(
                pl.concat_str(
                    [
                        pl.lit("catalog/products/"),
                        pl.col("d"),
                        pl.lit("/"),
                        pl.col("s"),
                        pl.lit("-"),
                        pl.col("id"),
                        pl.lit(".jpg"),
                    ]
                )
            )
            .when(pl.col("kind") == 1)
            .then(
                pl.concat_str([pl.lit("catalog/Products/"), pl.col("sub"), pl.lit(" "), pl.col("id"), pl.lit(".JPG")])
            )
            .when(pl.col("kind") == 2)
            .then(pl.lit(""))
            .otherwise(None)
        )
        .to_series()
    )
    codes = pl.Series([*catalog.brand_codes, "GEN"]).gather(np.where(core.brand < 0, len(catalog.brands), core.brand))
    pid_text = pl.Series(core.pid).cast(pl.Utf8).str.zfill(6)
    model = codes + "-" + pid_text
    sku_kind = _pick(rng, n, [0.83, 0.14, 0.01, 0.02])
    sku = (
        pl.DataFrame({"m": model, "k": sku_kind, "p": pid_text})
        .select(
            pl.when(pl.col("k") == 0)
            .then(pl.concat_str([pl.lit("SKU-"), pl.col("p")]))
            .when(pl.col("k") == 1)
            .then(pl.lit(""))
            .when(pl.col("k") == 2)
            .then(pl.lit("  "))
            .otherwise(pl.concat_str([pl.lit(" "), pl.col("m"), pl.lit(" ")]))
        )
        .to_series()
    )
    ean_body = rng.integers(10**11, 10**12, n) + 400 * 10**12
    digits = (ean_body[:, None] // (10 ** np.arange(12)[::-1])) % 10
    check = (10 - (digits * np.tile([1, 3], 6)).sum(axis=1) % 10) % 10
    ean = pl.Series(ean_body * 10 + check).cast(pl.Utf8)
    ean = (
        pl.DataFrame({"e": ean, "k": rng.random(n) < 0.4})
        .select(pl.when(pl.col("k")).then(pl.col("e")).otherwise(pl.lit("")))
        .to_series()
    )
    mpn = (
        pl.DataFrame({"p": pid_text, "k": rng.random(n) < 0.3})
        .select(pl.when(pl.col("k")).then(pl.concat_str([pl.lit("MPN"), pl.col("p")])).otherwise(pl.lit("")))
        .to_series()
    )
    available = core.added.astype("datetime64[D]").astype(np.int64)
    date_available = _dates(available)
    no_date = rng.random(n) < 0.1
    modified = _datetimes(core.modified)
    zero_modified = rng.random(n) < 0.003
    empty = pl.Series([""] * n, dtype=pl.Utf8)
    return pl.DataFrame(
        {
            "product_id": core.pid,
            "model": model,
            "sku": sku,
            "upc": empty,
            "ean": ean,
            "jan": empty,
            "isbn": empty,
            "mpn": mpn,
            "location": empty,
            "quantity": core.quantity,
            "stock_status_id": core.stock_status,
            "image": image,
            "manufacturer_id": np.where(core.brand < 0, 0, core.brand + 1),
            "shipping": np.ones(n, np.int64),
            "price": core.price,
            "points": np.zeros(n, np.int64),
            "tax_class_id": np.where(rng.random(n) < 0.9, 9, 0),
            "date_available": pl.Series(np.where(no_date, _ZERO_DATE, date_available.to_numpy())),
            "weight": core.weight,
            "weight_class_id": np.ones(n, np.int64),
            "length": np.round(rng.uniform(5, 80, n), 2),
            "width": np.round(rng.uniform(5, 60, n), 2),
            "height": np.round(rng.uniform(1, 40, n), 2),
            "length_class_id": np.ones(n, np.int64),
            "subtract": np.ones(n, np.int64),
            "minimum": np.ones(n, np.int64),
            "sort_order": np.where(rng.random(n) < 0.9, 0, rng.integers(1, 10, n)),
            "status": core.status,
            "viewed": rng.integers(0, 5000, n),
            "date_added": _datetimes(core.added),
            "date_modified": pl.Series(np.where(zero_modified, _ZERO_DATETIME, modified.to_numpy())),
        }
    )


def _description_rows(core: _Core, catalog: _Catalog, lang: _Language) -> pl.DataFrame:
    names = _names(core, catalog, lang)
    stored = _encode_expr(pl.col("n"))
    frame = pl.DataFrame(
        {
            "n": _messy(names, core.messy_name),
            "clean": names,
            "opener": lang.plain_openers.gather(_pool_index(core.draws[:, 0], len(lang.words.openers))),
            "noun": lang.nouns.gather(core.sub),
            "line": lang.lines.gather(core.line),
            "dept": lang.departments.gather(core.dept),
            "tagged": core.layout[:, 7],
            "meta": core.draws[:, 4] < 0.3,
        }
    )
    c = pl.col
    return frame.select(
        pl.Series("product_id", core.pid),
        pl.lit(lang.language_id, dtype=pl.Int64).alias("language_id"),
        stored.alias("name"),
        _html_descriptions(core, names, lang).alias("description"),
        pl.when(c("tagged"))
        .then(pl.concat_str([c("noun"), c("line"), c("dept")], separator=", ").str.to_lowercase())
        .otherwise(pl.lit(""))
        .pipe(_encode_expr)
        .alias("tag"),
        _encode_expr(c("clean")).alias("meta_title"),
        pl.when(c("meta"))
        .then(_encode_expr(pl.concat_str([c("clean"), c("opener")], separator=" ").str.slice(0, 180)))
        .otherwise(pl.lit(""))
        .alias("meta_description"),
        pl.lit("").alias("meta_keyword"),
    )


def _category_links(core: _Core, catalog: _Catalog, rng: np.random.Generator) -> pl.DataFrame:
    n = len(core.pid)
    parent = catalog.parent_id[core.leaf]
    with_parent = rng.random(n) < 0.3
    extra = rng.random(n) < 0.08
    extra_leaf = catalog.leaf_index[rng.integers(0, len(catalog.leaf_index), int(extra.sum()))]
    return (
        pl.DataFrame(
            {
                "product_id": np.concatenate([core.pid, core.pid[with_parent], core.pid[extra]]),
                "category_id": np.concatenate(
                    [catalog.category_id[core.leaf], parent[with_parent], catalog.category_id[extra_leaf]]
                ),
            }
        )
        .unique(maintain_order=True)
        .sort("product_id", maintain_order=True)
    )


def _special_rows(core: _Core, rng: np.random.Generator, ids: _Ids) -> pl.DataFrame:
    has = np.flatnonzero((rng.random(len(core.pid)) < 0.2) & (core.price > 0))
    second = has[rng.random(len(has)) < 0.25]
    rows = np.concatenate([has, second])
    m = len(rows)
    kind = _pick(rng, m, [0.35, 0.2, 0.2, 0.1, 0.1, 0.05])  # open, dated, expired, future, not lower, group 2
    base = core.price[rows]
    lower = _money(base * rng.uniform(0.6, 0.95, m))
    price = np.where(kind == 4, _money(base * rng.uniform(1.0, 1.1, m)), lower)
    past = _day("2019-01-01") + rng.integers(0, 5 * 365, m)
    start = np.where(kind == 1, _day("2024-01-01") + rng.integers(0, 500, m), past)
    start = np.where(kind == 3, _day("2031-01-01") + rng.integers(0, 365, m), start)
    end = np.where(kind == 1, _day("2030-01-01") + rng.integers(0, 5 * 365, m), past + rng.integers(10, 120, m))
    start_text = _dates(start).to_numpy()
    end_text = _dates(end).to_numpy()
    zero = np.full(m, _ZERO_DATE, dtype=object)
    open_ended = np.isin(kind, [0, 3, 4, 5])
    frame = pl.DataFrame(
        {
            "product_special_id": np.arange(ids.special, ids.special + m),
            "product_id": core.pid[rows],
            "customer_group_id": np.where(kind == 5, 2, 1),
            "priority": np.concatenate([np.ones(len(has), np.int64), np.full(len(second), 2)]),
            "price": price,
            "date_start": pl.Series(np.where(np.isin(kind, [0, 4, 5]), zero, start_text), dtype=pl.Utf8),
            "date_end": pl.Series(np.where(open_ended, zero, end_text), dtype=pl.Utf8),
        }
    )
    ids.special += m
    return frame


def _discount_rows(core: _Core, rng: np.random.Generator, ids: _Ids) -> pl.DataFrame:
    n = len(core.pid)
    tiers = np.flatnonzero((rng.random(n) < 0.06) & (core.price > 0))
    wholesale = np.flatnonzero((rng.random(n) < 0.04) & (core.price > 0))
    rows = np.concatenate([np.repeat(tiers, 3), wholesale])
    quantity = np.concatenate([np.tile([10, 20, 50], len(tiers)), np.ones(len(wholesale), np.int64)])
    factor = np.concatenate([np.tile([0.95, 0.9, 0.85], len(tiers)), np.full(len(wholesale), 0.8)])
    m = len(rows)
    frame = pl.DataFrame(
        {
            "product_discount_id": np.arange(ids.discount, ids.discount + m),
            "product_id": core.pid[rows],
            "customer_group_id": np.concatenate([np.ones(3 * len(tiers), np.int64), np.full(len(wholesale), 2)]),
            "quantity": quantity,
            "priority": np.ones(m, np.int64),
            "price": _money(core.price[rows] * factor),
            "date_start": pl.Series([_ZERO_DATE] * m, dtype=pl.Utf8),
            "date_end": pl.Series([_ZERO_DATE] * m, dtype=pl.Utf8),
        }
    ).sort("product_id", maintain_order=True)
    ids.discount += m
    return frame


def _option_rows(core: _Core, rng: np.random.Generator, ids: _Ids) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = len(core.pid)
    sized = np.isin(core.sub, list(_SIZE_SUBCATEGORIES))
    colored = rng.random(n) < np.where(core.dept == _FASHION, 0.6, 0.25)
    gift = rng.random(n) < 0.03
    engraving = rng.random(n) < 0.02
    product_rows = np.concatenate([np.flatnonzero(f) for f in (sized, colored, gift, engraving)])
    option = np.concatenate(
        [np.full(int(f.sum()), o) for f, o in zip((sized, colored, gift, engraving), (1, 2, 3, 4), strict=True)]
    )
    order = np.lexsort((option, product_rows))
    product_rows, option = product_rows[order], option[order]
    m = len(option)
    po_id = np.arange(ids.option, ids.option + m)
    ids.option += m
    options = pl.DataFrame(
        {
            "product_option_id": po_id,
            "product_id": core.pid[product_rows],
            "option_id": option,
            "value": pl.Series([""] * m, dtype=pl.Utf8),
            "required": np.where(np.isin(option, [_OPT_SIZE, _OPT_COLOR]), 1, 0),
        }
    )
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for opt, count, base, share in (
        (_OPT_SIZE, 6, 1, 0.7),
        (_OPT_COLOR, 8, _COLOR_VALUE_BASE, 0.35),
        (_OPT_GIFT, 2, _GIFT_VALUE_BASE, 0.8),
    ):
        sel = np.flatnonzero(option == opt)
        r, v = _mask_pick(rng, len(sel), count, share)
        parts.append((sel[r], v + base))
    rows = np.concatenate([p[0] for p in parts])
    value = np.concatenate([p[1] for p in parts])
    order = np.lexsort((value, rows))
    rows, value = rows[order], value[order]
    k = len(rows)
    big = value >= 5  # XL and XXL cost extra
    kind = _pick(rng, k, [0.85, 0.1, 0.05])
    price = np.where(
        kind == 1, np.round(rng.uniform(1, 15, k)), np.where(kind == 2, np.round(rng.uniform(1, 5, k)), 0.0)
    )
    price = np.where(big & (value <= 6), np.where(value == 5, 2.0, 4.0), price)
    values = pl.DataFrame(
        {
            "product_option_value_id": np.arange(ids.option_value, ids.option_value + k),
            "product_option_id": po_id[rows],
            "product_id": core.pid[product_rows[rows]],
            "option_id": option[rows],
            "option_value_id": value,
            "quantity": rng.integers(0, 60, k),
            "subtract": np.ones(k, np.int64),
            "price": price.astype(np.float64),
            "price_prefix": pl.Series(np.where((kind == 2) & ~(big & (value <= 6)), "-", "+"), dtype=pl.Utf8),
            "points": np.zeros(k, np.int64),
            "points_prefix": pl.Series(["+"] * k, dtype=pl.Utf8),
            "weight": np.zeros(k, np.float64),
            "weight_prefix": pl.Series(["+"] * k, dtype=pl.Utf8),
        }
    )
    ids.option_value += k
    return options, values


def _image_rows(core: _Core, rng: np.random.Generator, ids: _Ids) -> pl.DataFrame:
    counts = _pick(rng, len(core.pid), [0.25, 0.3, 0.25, 0.12, 0.08])
    rows = np.repeat(np.arange(len(core.pid)), counts)
    k = len(rows)
    position = _within_group(counts)
    dept = pl.Series([_slug(d) for d in _EN.departments]).gather(core.dept[rows])
    sub = pl.Series([_slug(s) for s, _ in _EN.subcategories]).gather(core.sub[rows])
    frame = pl.DataFrame(
        {
            "d": dept,
            "s": sub,
            "id": pl.Series(core.pid[rows]).cast(pl.Utf8),
            "k": pl.Series(position + 2).cast(pl.Utf8),
        }
    ).select(
        pl.Series("product_image_id", np.arange(ids.image, ids.image + k)),
        pl.Series("product_id", core.pid[rows]),
        pl.concat_str(
            [
                pl.lit("catalog/products/"),
                pl.col("d"),
                pl.lit("/"),
                pl.col("s"),
                pl.lit("-"),
                pl.col("id"),
                pl.lit("-"),
                pl.col("k"),
                pl.lit(".jpg"),
            ]
        ).alias("image"),
        pl.Series("sort_order", position),
    )
    ids.image += k
    return frame


def _attribute_rows(core: _Core, langs: Sequence[_Language], rng: np.random.Generator) -> pl.DataFrame:
    n = len(core.pid)
    material = np.flatnonzero(rng.random(n) < 0.5)
    warranty = np.flatnonzero(rng.random(n) < 0.3)
    frames: list[pl.DataFrame] = []
    for lang in langs:
        for attribute_id, rows, texts in (
            (1, material, lang.materials.gather(core.material[material])),
            (2, warranty, lang.warranty.gather(core.warranty[warranty])),
        ):
            frames.append(
                pl.DataFrame(
                    {
                        "product_id": core.pid[rows],
                        "attribute_id": np.full(len(rows), attribute_id),
                        "language_id": np.full(len(rows), lang.language_id),
                        "text": texts,
                    }
                )
            )
    return pl.concat(frames).sort(["product_id", "attribute_id", "language_id"])


def _seo_rows(core: _Core, catalog: _Catalog, langs: Sequence[_Language], ids: _Ids) -> pl.DataFrame:
    keep = np.flatnonzero(core.has_seo)
    query = pl.Series(core.pid[keep]).cast(pl.Utf8)
    frames: list[pl.DataFrame] = []
    earlier: list[pl.Series] = []
    for lang in langs:
        keyword = _slugs(core, catalog, lang).gather(keep)
        clash = np.zeros(len(keep), dtype=bool)
        for other in earlier:
            clash |= (keyword == other).to_numpy()
        keyword = (
            pl.DataFrame({"k": keyword, "c": clash})
            .select(pl.when(pl.col("c")).then(pl.col("k") + f"-{lang.key}").otherwise(pl.col("k")))
            .to_series()
        )
        earlier.append(keyword)
        frames.append(
            pl.DataFrame(
                {
                    "product_id": core.pid[keep],
                    "store_id": np.zeros(len(keep), np.int64),
                    "language_id": np.full(len(keep), lang.language_id),
                    "query": "product_id=" + query,
                    "keyword": keyword,
                }
            )
        )
    frame = pl.concat(frames).sort(["product_id", "language_id"]).drop("product_id")
    frame = frame.select(pl.Series("seo_url_id", np.arange(ids.seo, ids.seo + frame.height)), pl.all())
    ids.seo += frame.height
    return frame


# ------------------------------------------------------------------------------------------------ base tables


def _base_tables(catalog: _Catalog, langs: Sequence[_Language], ids: _Ids, name: str) -> dict[str, pl.DataFrame]:
    tables: dict[str, pl.DataFrame] = {}
    tables["language"] = pl.DataFrame(
        {
            "language_id": [lang.language_id for lang in langs],
            "name": [lang.words.name for lang in langs],
            "code": [lang.code for lang in langs],
            "locale": [lang.locale_string for lang in langs],
            "image": [lang.words.flag for lang in langs],
            "directory": [lang.code for lang in langs],
            "sort_order": [lang.language_id for lang in langs],
            "status": [1] * len(langs),
        }
    )
    settings = [
        ("config_name", name, 0),
        ("config_owner", "Larkspur Trading Ltd", 0),
        ("config_email", "shop@larkspur-demo.example", 0),
        ("config_language", langs[0].code, 0),
        ("config_admin_language", langs[0].code, 0),
        ("config_currency", "USD", 0),
        ("config_currency_auto", "1", 0),
        ("config_customer_group_id", "1", 0),
        ("config_customer_group_display", '["1","2"]', 1),
        ("config_tax", "1", 0),
        ("config_stock_display", "0", 0),
        ("config_stock_checkout", "0", 0),
        ("config_seo_url", "1", 0),
        ("config_timezone", "UTC", 0),
        ("config_product_description_length", "100", 0),
    ]
    tables["setting"] = pl.DataFrame(
        {
            "setting_id": list(range(1, len(settings) + 1)),
            "store_id": [0] * len(settings),
            "code": ["config"] * len(settings),
            "key": [k for k, _, _ in settings],
            "value": [v for _, v, _ in settings],
            "serialized": [s for _, _, s in settings],
        }
    )
    tables["currency"] = pl.DataFrame(
        {
            "currency_id": [c[0] for c in _CURRENCIES],
            "title": [c[1] for c in _CURRENCIES],
            "code": [c[2] for c in _CURRENCIES],
            "symbol_left": [c[3] for c in _CURRENCIES],
            "symbol_right": [c[4] for c in _CURRENCIES],
            "decimal_place": ["2"] * len(_CURRENCIES),
            "value": [c[5] for c in _CURRENCIES],
            "status": [c[6] for c in _CURRENCIES],
            "date_modified": ["2026-06-01 06:00:00"] * len(_CURRENCIES),
        }
    )
    tables["customer_group"] = pl.DataFrame({"customer_group_id": [1, 2], "approval": [0, 1], "sort_order": [1, 2]})
    tables["customer_group_description"] = pl.DataFrame(
        {
            "customer_group_id": [g for _ in langs for g in (1, 2)],
            "language_id": [lang.language_id for lang in langs for _ in (1, 2)],
            "name": [_encode(n) for lang in langs for n in lang.words.groups],
            "description": [""] * (2 * len(langs)),
        }
    )
    stock = [
        (sid, lang.language_id, _encode(text))
        for lang in langs
        for sid, text in zip(_STOCK_IDS, lang.words.stock, strict=True)
    ]
    tables["stock_status"] = pl.DataFrame(stock, schema=["stock_status_id", "language_id", "name"], orient="row")

    option_types = (
        (_OPT_SIZE, "select"),
        (_OPT_COLOR, "radio"),
        (_OPT_GIFT, "checkbox"),
        (_OPT_ENGRAVING, "text"),
    )
    tables["option"] = pl.DataFrame(
        {
            "option_id": [o for o, _ in option_types],
            "type": [t for _, t in option_types],
            "sort_order": [1, 2, 3, 4],
        }
    )
    tables["option_description"] = pl.DataFrame(
        [(o, lang.language_id, _encode(lang.words.options[o - 1])) for lang in langs for o, _ in option_types],
        schema=["option_id", "language_id", "name"],
        orient="row",
    )
    values: list[tuple[int, int, int]] = [(i + 1, _OPT_SIZE, i) for i in range(len(_SIZES))]
    values += [(_COLOR_VALUE_BASE + i, _OPT_COLOR, i) for i in range(8)]
    values += [(_GIFT_VALUE_BASE + i, _OPT_GIFT, i) for i in range(2)]
    tables["option_value"] = pl.DataFrame(
        {
            "option_value_id": [v for v, _, _ in values],
            "option_id": [o for _, o, _ in values],
            "image": [""] * len(values),
            "sort_order": [i + 1 for _, _, i in values],
        }
    )

    def value_name(option_id: int, index: int, words: _Words) -> str:
        if option_id == _OPT_SIZE:
            return _SIZES[index]
        return words.colors[index] if option_id == _OPT_COLOR else words.gifts[index]

    tables["option_value_description"] = pl.DataFrame(
        [(v, lang.language_id, o, _encode(value_name(o, i, lang.words))) for lang in langs for v, o, i in values],
        schema=["option_value_id", "language_id", "option_id", "name"],
        orient="row",
    ).sort(["option_value_id", "language_id"])
    tables["attribute"] = pl.DataFrame({"attribute_id": [1, 2], "attribute_group_id": [1, 1], "sort_order": [1, 2]})
    tables["attribute_description"] = pl.DataFrame(
        [(a + 1, lang.language_id, _encode(lang.words.attributes[a])) for lang in langs for a in (0, 1)],
        schema=["attribute_id", "language_id", "name"],
        orient="row",
    )
    tables["manufacturer"] = pl.DataFrame(
        {
            "manufacturer_id": list(range(1, len(catalog.brands) + 1)),
            "name": [_encode(b) for b in catalog.brands],
            "image": [
                f"catalog/brands/{_slug(b)}.png" if i % 3 and _slug(b) else None for i, b in enumerate(catalog.brands)
            ],
            "sort_order": [0] * len(catalog.brands),
        }
    )
    rows = range(len(catalog.category_id))
    tables["category"] = pl.DataFrame(
        {
            "category_id": catalog.category_id,
            "image": [_category_image(catalog, r) for r in rows],
            "parent_id": catalog.parent_id,
            "top": (catalog.level == 0).astype(np.int64),
            "column": np.ones(len(catalog.category_id), np.int64),
            "sort_order": [_category_sort_order(catalog, r) for r in rows],
            "status": (catalog.category_id != catalog.disabled).astype(np.int64),
            "date_added": ["2017-11-20 10:15:00"] * len(catalog.category_id),
            "date_modified": ["2024-02-03 08:30:00"] * len(catalog.category_id),
        }
    )
    desc: list[tuple[int, int, str, str, str, str, str]] = []
    seo: list[tuple[int, int, int, str, str]] = []
    for lang in langs:
        keywords: dict[int, str] = {}
        for r in rows:
            cid = int(catalog.category_id[r])
            name_text = catalog.name(r, lang.words)
            blurb = (
                "" if catalog.level[r] == 2 else _encode(f"<p>{lang.words.blurb.format(c=_html_text(name_text))}</p>")
            )
            desc.append((cid, lang.language_id, _encode(name_text), blurb, _encode(name_text), "", ""))
            parent = int(catalog.parent_id[r])
            keyword = _slug(name_text) if not parent else f"{keywords[parent]}-{_slug(name_text)}"
            keywords[cid] = keyword
            seo.append((0, 0, lang.language_id, f"category_id={cid}", keyword))
    for b, brand in enumerate(catalog.brands):
        if _slug(brand):
            seo.append((0, 0, 1, f"manufacturer_id={b + 1}", _slug(brand)))
    tables["category_description"] = pl.DataFrame(
        desc,
        schema=[
            "category_id",
            "language_id",
            "name",
            "description",
            "meta_title",
            "meta_description",
            "meta_keyword",
        ],
        orient="row",
    ).sort(["category_id", "language_id"])
    paths = [(int(catalog.category_id[r]), p, lvl) for r in rows for lvl, p in enumerate(catalog.path(r))]
    tables["category_path"] = pl.DataFrame(paths, schema=["category_id", "path_id", "level"], orient="row")
    seo_frame = pl.DataFrame(seo, schema=["seo_url_id", "store_id", "language_id", "query", "keyword"], orient="row")
    seo_frame = _dedupe_keywords(seo_frame, langs)
    tables["seo_url"] = seo_frame.with_columns(pl.Series("seo_url_id", np.arange(ids.seo, ids.seo + seo_frame.height)))
    ids.seo += seo_frame.height
    return tables


def _category_image(catalog: _Catalog, row: int) -> str | None:
    if catalog.level[row] != 0:
        return None
    return f"catalog/categories/{_slug(_EN.departments[int(catalog.department[row])])}.jpg"


def _category_sort_order(catalog: _Catalog, row: int) -> int:
    if catalog.level[row] == 2:
        return int(catalog.qualifier[row]) + 1
    if catalog.level[row] == 1:
        return int(catalog.subcategory[row]) % 4 + 1
    return int(catalog.department[row]) + 1


def _dedupe_keywords(frame: pl.DataFrame, langs: Sequence[_Language]) -> pl.DataFrame:
    """Keep SEO keywords unique per store (OpenCart's rule) by suffixing the language on later duplicates."""
    keys = {lang.language_id: lang.key for lang in langs}
    seen: set[str] = set()
    keywords: list[str] = []
    for language_id, keyword in frame.select("language_id", "keyword").iter_rows():
        candidate = keyword if keyword not in seen else f"{keyword}-{keys[language_id]}"
        seen.add(candidate)
        keywords.append(candidate)
    return frame.with_columns(pl.Series("keyword", keywords))


# ------------------------------------------------------------------------------------------------ public API


@dataclass(frozen=True)
class ShopStats:
    """What :func:`generate_shop` wrote.

    Attributes:
        products: Products written.
        languages: Language codes, in ``language_id`` order.
        categories: Categories in the tree (all three levels).
        manufacturers: Manufacturers.
        rows: Rows written per table (prefixed table names).
        seconds: Wall time of the whole build.

    """

    products: int
    languages: tuple[str, ...]
    categories: int
    manufacturers: int
    rows: dict[str, int] = field(default_factory=dict[str, int])
    seconds: float = 0.0

    def __str__(self) -> str:
        total = sum(self.rows.values())
        return (
            f"{self.products:,} products, {len(self.languages)} languages ({', '.join(self.languages)}), "
            f"{self.categories} categories, {self.manufacturers} manufacturers, "
            f"{total:,} rows in {self.seconds:.1f} s"
        )


def generate_shop(
    url: str,
    *,
    products: int = 300,
    languages: Sequence[str] = ("en-gb", "de-de"),
    seed: int = 7,
    chunk: int = 50_000,
    progress: Callable[[int], None] | None = None,
    prefix: str = DEFAULT_PREFIX,
    name: str = "Larkspur Home & Outdoor",
) -> ShopStats:
    """Write a realistic OpenCart 3 catalog into a SQLite file or a MariaDB/MySQL database.

    The catalog tables of :func:`aac_etl.sources.opencart.tables.catalog_metadata` are dropped and re-created
    (other tables are left alone); a MariaDB database named in the URL is created when missing.

    Args:
        url: SQLAlchemy URL, ``sqlite:///path/shop.sqlite`` or ``mysql+pymysql://user@host:3306/db``.
        products: Number of products (ids ``1..products``).
        languages: OpenCart language codes; the first is the shop's default (``config_language``). Supported
            prefixes: ``en``, ``de``, ``fr``, ``es``, ``ru``.
        seed: Random seed; the same arguments (``chunk`` included) and seed give the same shop.
        chunk: Products generated and inserted per transaction (bounds memory).
        progress: Called with the number of products written so far after every chunk.
        prefix: Table name prefix (OpenCart's ``DB_PREFIX``).
        name: Store name (``config_name``).

    Returns:
        Counts of what was written and the wall time.

    Raises:
        ValueError: Unsupported backend or language, or a non-positive ``products``/``chunk``.

    """
    if products < 1 or chunk < 1:
        raise ValueError("products and chunk must be positive")
    started = time.perf_counter()
    langs = _languages(languages)
    catalog = _build_catalog(products, np.random.default_rng([seed, 0]))
    engine, backend = _prepare_database(url)
    metadata = catalog_metadata(prefix)
    ids = _Ids()
    try:
        _create_schema(engine, metadata)
        writer = _Writer(engine, backend, metadata)
        try:
            for table, frame in _base_tables(catalog, langs, ids, _encode(name)).items():
                writer.insert(prefix + table, frame)
            writer.commit()
            for number, start in enumerate(range(1, products + 1, chunk), start=1):
                n = min(chunk, products + 1 - start)
                rng = np.random.default_rng([seed, 1, number])
                _write_chunk(writer, prefix=prefix, catalog=catalog, langs=langs, ids=ids, start=start, n=n, rng=rng)
                writer.commit()
                if progress is not None:
                    progress(start + n - 1)
            rows = dict(writer.rows)
        finally:
            writer.close()
        _create_indexes(engine, metadata)
    finally:
        engine.dispose()
    return ShopStats(
        products=products,
        languages=tuple(lang.code for lang in langs),
        categories=len(catalog.category_id),
        manufacturers=len(catalog.brands),
        rows=rows,
        seconds=time.perf_counter() - started,
    )


def _write_chunk(
    writer: _Writer,
    *,
    prefix: str,
    catalog: _Catalog,
    langs: Sequence[_Language],
    ids: _Ids,
    start: int,
    n: int,
    rng: np.random.Generator,
) -> None:
    core = _core(catalog, start, n, rng)
    writer.insert(f"{prefix}product", _product_rows(core, catalog, rng))
    writer.insert(
        f"{prefix}product_to_store", pl.DataFrame({"product_id": core.pid, "store_id": np.zeros(n, np.int64)})
    )
    for lang in langs:
        writer.insert(f"{prefix}product_description", _description_rows(core, catalog, lang))
    writer.insert(f"{prefix}product_to_category", _category_links(core, catalog, rng))
    writer.insert(f"{prefix}product_special", _special_rows(core, rng, ids))
    writer.insert(f"{prefix}product_discount", _discount_rows(core, rng, ids))
    options, values = _option_rows(core, rng, ids)
    writer.insert(f"{prefix}product_option", options)
    writer.insert(f"{prefix}product_option_value", values)
    writer.insert(f"{prefix}product_image", _image_rows(core, rng, ids))
    writer.insert(f"{prefix}product_attribute", _attribute_rows(core, langs, rng))
    writer.insert(f"{prefix}seo_url", _seo_rows(core, catalog, langs, ids))


def mutate_shop(
    url: str,
    *,
    change_share: float,
    delete_ids: Sequence[int] = (),
    seed: int = 1,
    prefix: str = DEFAULT_PREFIX,
) -> int:
    """Change the price of a share of the products of a generated shop, and delete some products.

    The changed products get a new price (5-20 % up or down, never equal to the old one) and
    ``date_modified`` = now (UTC, whole seconds); nothing else changes, so a sync re-sends exactly those
    documents. Deleted products lose their rows in every product table and their SEO keywords.

    Args:
        url: SQLAlchemy URL of the shop (as given to :func:`generate_shop`).
        change_share: Share of the remaining products to change, 0..1 (rounded to whole products).
        delete_ids: Product ids to delete first (ids that do not exist are ignored).
        seed: Random seed choosing the products and the new prices.
        prefix: Table name prefix.

    Returns:
        The number of products whose price changed.

    Raises:
        ValueError: ``change_share`` outside 0..1, or an unsupported backend.

    """
    if not 0.0 <= change_share <= 1.0:
        raise ValueError(f"change_share must be within 0..1, got {change_share}")
    engine, backend = _prepare_database(url)
    quote = engine.dialect.identifier_preparer.quote
    mark = "?" if backend == "sqlite" else "%s"
    product = quote(f"{prefix}product")
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        deleted = sorted({int(i) for i in delete_ids})
        if deleted:
            _delete_products(cursor, quote, mark, prefix, deleted)
        cursor.execute(f"SELECT product_id, price FROM {product} ORDER BY product_id")
        rows = cursor.fetchall()
        pid = np.array([int(r[0]) for r in rows], dtype=np.int64)
        price = np.array([float(r[1]) for r in rows], dtype=np.float64)
        rng = np.random.default_rng([seed, 2])
        k = round(change_share * len(pid))
        chosen = np.sort(rng.choice(len(pid), size=k, replace=False)) if k else np.zeros(0, np.int64)
        factor = rng.uniform(1.05, 1.2, k)
        factor = np.where(rng.random(k) < 0.5, 1.0 / factor, factor)
        new = _money(price[chosen] * factor)
        new = np.where((new == price[chosen]) | (new <= 0), _money(price[chosen] + 1.0), new)
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        params = [(float(p), now, int(i)) for p, i in zip(new, pid[chosen], strict=True)]
        if params:
            cursor.executemany(
                f"UPDATE {product} SET price = {mark}, date_modified = {mark} WHERE product_id = {mark}",
                params,
            )
        conn.commit()
        cursor.close()
    finally:
        conn.close()
        engine.dispose()
    return k


def _delete_products(cursor: Any, quote: Callable[[str], str], mark: str, prefix: str, ids: list[int]) -> None:
    tables = (
        "product",
        "product_description",
        "product_to_category",
        "product_to_store",
        "product_special",
        "product_discount",
        "product_option",
        "product_option_value",
        "product_image",
        "product_attribute",
    )
    for offset in range(0, len(ids), 500):
        batch = ids[offset : offset + 500]
        marks = ", ".join([mark] * len(batch))
        for table in tables:
            cursor.execute(f"DELETE FROM {quote(prefix + table)} WHERE product_id IN ({marks})", batch)
        cursor.execute(
            f"DELETE FROM {quote(prefix + 'seo_url')} WHERE {quote('query')} IN ({marks})",
            [f"product_id={i}" for i in batch],
        )


# ---------------------------------------------------------------------------------------------- export files

_TRAILING = ("locale", "created_at", "updated_at")
_IMAGES_TYPE = pl.List(pl.Struct({"url": pl.Utf8, "alt": pl.Utf8}))
_FILE_ATTRIBUTES = pl.Struct(
    {
        "material": pl.Utf8,
        "option_color": pl.List(pl.Utf8),
        "option_size": pl.List(pl.Utf8),
        "images": _IMAGES_TYPE,
        "price_by_currency": pl.Struct({"EUR": pl.Float64, "GBP": pl.Float64}),
    }
)
_TOP_LEVEL = document_dtypes(load_contract())
_FILE_SCHEMA = pl.Schema(
    {
        **{k: v for k, v in _TOP_LEVEL.items() if k not in _TRAILING},
        "attributes": _FILE_ATTRIBUTES,
        **{k: _TOP_LEVEL[k] for k in _TRAILING},
    }
)


def generate_files(
    out_dir: str | Path,
    *,
    products: int,
    fmt: Literal["jsonl", "csv", "parquet"],
    languages: Sequence[str] = ("en", "de"),
    seed: int = 7,
    chunk: int = 50_000,
    storefront_url: str = "https://files-shop.example.com",
) -> Path:
    """Write a catalog export already in SyncProductInput shape (one document per product and locale).

    The documents are valid against ``data_contracts/sync_product_input.odcs.yaml``: plain-text titles and
    descriptions, absolute URLs, ``sale_price`` only when lower than ``price``, aligned category paths,
    ``attributes`` with ``material``, ``option_color``/``option_size``, ``images`` and ``price_by_currency``.
    In CSV, the list and object fields (``categories``, ``category_ids``, ``tags``, ``attributes``) hold
    JSON text.

    Args:
        out_dir: Folder to write ``products.<fmt>`` into (created when missing).
        products: Number of products.
        fmt: ``jsonl``, ``csv`` or ``parquet``.
        languages: Locales (``en``, ``de``, ``fr``, ``es``, ``ru``; ``de-de`` style codes are accepted too).
        seed: Random seed; the same arguments (``chunk`` included) and seed give the same file.
        chunk: Products generated per write (bounds memory).
        storefront_url: Base URL of image and product URLs.

    Returns:
        Path of the written file.

    Raises:
        ValueError: Unknown format or language, or a non-positive ``products``/``chunk``.

    """
    if fmt not in ("jsonl", "csv", "parquet"):
        raise ValueError(f"unknown format {fmt!r}")
    if products < 1 or chunk < 1:
        raise ValueError("products and chunk must be positive")
    langs = _languages(languages)
    catalog = _build_catalog(products, np.random.default_rng([seed, 0]))
    base = storefront_url.rstrip("/")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"products.{fmt}"
    path.unlink(missing_ok=True)
    parquet_writer: Any = None
    try:
        for number, start in enumerate(range(1, products + 1, chunk), start=1):
            n = min(chunk, products + 1 - start)
            rng = np.random.default_rng([seed, 1, number])
            core = _core(catalog, start, n, rng)
            frame = pl.concat([_documents(core, catalog, lang, base, rng) for lang in langs])
            frame = frame.sort(pl.col("external_id").str.extract(r"^(\d+)").cast(pl.Int64), maintain_order=True)
            if fmt == "parquet":
                table = frame.to_arrow()
                if parquet_writer is None:
                    parquet_writer = pq.ParquetWriter(path, table.schema)
                parquet_writer.write_table(table)
            elif fmt == "jsonl":
                with path.open("ab") as handle:
                    frame.write_ndjson(handle)
            else:
                with path.open("ab") as handle:
                    _csv_frame(frame).write_csv(handle, include_header=number == 1)
    finally:
        if parquet_writer is not None:
            parquet_writer.close()
    return path


def _csv_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Encode the list and struct columns as JSON text (CSV has no nested values)."""
    lists = ["categories", "category_ids", "tags"]
    return frame.with_columns(
        *[
            pl.struct(pl.col(c).alias("v")).struct.json_encode().str.slice(5).str.strip_suffix("}").alias(c)
            for c in lists
        ],
        pl.col("attributes").struct.json_encode(),
    )


def _documents(core: _Core, catalog: _Catalog, lang: _Language, base: str, rng: np.random.Generator) -> pl.DataFrame:
    n = len(core.pid)
    names = _names(core, catalog, lang)
    rows = range(len(catalog.category_id))
    path_ids = [catalog.path(r) for r in rows]
    cat_ids = pl.Series([[str(i) for i in ids] for ids in path_ids], dtype=pl.List(pl.Utf8)).gather(core.leaf)
    cat_names = pl.Series(
        [[catalog.name(i - 1, lang.words) for i in ids] for ids in path_ids], dtype=pl.List(pl.Utf8)
    ).gather(core.leaf)
    brands = pl.Series([b.strip() or None for b in catalog.brands] + [None], dtype=pl.Utf8)
    special = (rng.random(n) < 0.15) & (core.price > 0)
    sale = np.where(special, _money(core.price * rng.uniform(0.6, 0.95, n)), np.nan)
    quantity = np.maximum(core.quantity, 0)
    availability = np.where(quantity > 0, "in_stock", np.where(core.stock_status == 8, "preorder", "out_of_stock"))
    slugs = _slugs(core, catalog, lang)
    sizes = np.isin(core.sub, list(_SIZE_SUBCATEGORIES))
    colored = rng.random(n) < np.where(core.dept == _FASHION, 0.6, 0.25)
    color_lists = _value_lists(rng, colored, list(lang.words.colors), 0.35)
    size_lists = _value_lists(rng, sizes, list(_SIZES), 0.7)
    image_count = _pick(rng, n, [0.03, 0.3, 0.35, 0.32])
    dept = [_slug(d) for d in _EN.departments]
    sub = [_slug(s) for s, _ in _EN.subcategories]
    images: list[list[dict[str, str]] | None] = []
    titles = names.to_list()
    for i in range(n):
        count = int(image_count[i])
        folder = f"{base}/image/catalog/products/{dept[int(core.dept[i])]}"
        stem = f"{folder}/{sub[int(core.sub[i])]}-{int(core.pid[i])}"
        urls = [f"{stem}.jpg"] + [f"{stem}-{k + 2}.jpg" for k in range(count - 1)]
        images.append([{"url": u, "alt": titles[i]} for u in urls] if count else None)
    c = pl.col
    frame = pl.DataFrame(
        {
            "pid": core.pid,
            "title": names,
            "description": _plain_descriptions(core, names, lang),
            "brand": brands.gather(np.where(core.brand < 0, len(catalog.brands), core.brand)),
            "categories": cat_names,
            "category_ids": cat_ids,
            "noun": lang.nouns.gather(core.sub),
            "line": lang.lines.gather(core.line),
            "price": core.price,
            "sale": sale,
            "availability": availability,
            "stock_quantity": quantity,
            "slug": slugs,
            "material": lang.materials.gather(core.material),
            "option_color": pl.Series(color_lists, dtype=pl.List(pl.Utf8)),
            "option_size": pl.Series(size_lists, dtype=pl.List(pl.Utf8)),
            "images": pl.Series(images, dtype=_IMAGES_TYPE),
            "created": _datetimes(core.added),
            "updated": _datetimes(core.modified),
        }
    )
    codes = pl.Series([*catalog.brand_codes, "GEN"]).gather(np.where(core.brand < 0, len(catalog.brands), core.brand))
    rates = {code: rate for _, _, code, _, _, rate, _ in _CURRENCIES}
    iso = "%Y-%m-%dT%H:%M:%SZ"
    return frame.select(
        pl.concat_str([c("pid").cast(pl.Utf8), pl.lit(f":{lang.key}")]).alias("external_id"),
        c("title"),
        c("description"),
        (codes + "-" + pl.Series(core.pid).cast(pl.Utf8).str.zfill(6)).alias("sku"),
        c("brand"),
        c("categories"),
        c("category_ids"),
        pl.concat_list([c("noun").str.to_lowercase(), c("line").str.to_lowercase()]).alias("tags"),
        c("price"),
        pl.when(c("sale").is_nan()).then(None).otherwise(c("sale")).alias("sale_price"),
        pl.lit("USD").alias("currency"),
        c("images").list.first().struct.field("url").alias("image_url"),
        pl.concat_str([pl.lit(f"{base}/{lang.key}/"), c("slug")]).alias("product_url"),
        c("availability"),
        c("stock_quantity"),
        pl.struct(
            c("material"),
            c("option_color"),
            c("option_size"),
            c("images"),
            pl.struct(
                (c("price") * rates["EUR"]).round(2).alias("EUR"),
                (c("price") * rates["GBP"]).round(2).alias("GBP"),
            ).alias("price_by_currency"),
        ).alias("attributes"),
        pl.lit(lang.key).alias("locale"),
        c("created").str.to_datetime("%Y-%m-%d %H:%M:%S").dt.strftime(iso).alias("created_at"),
        c("updated").str.to_datetime("%Y-%m-%d %H:%M:%S").dt.strftime(iso).alias("updated_at"),
    ).cast(_FILE_SCHEMA)


def _value_lists(rng: np.random.Generator, has: np.ndarray, names: list[str], share: float) -> list[list[str] | None]:
    rows = np.flatnonzero(has)
    r, v = _mask_pick(rng, len(rows), len(names), share)
    out: list[list[str] | None] = [None] * len(has)
    for row, value in zip(rows[r].tolist(), v.tolist(), strict=True):
        current = out[row]
        if current is None:
            out[row] = [names[value]]
        else:
            current.append(names[value])
    return out
