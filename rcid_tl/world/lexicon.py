"""Word lists of the synthetic world: people, places, objects, event nouns and narrative words.

Every entry is a single alphabetic word, so the world tokenizer gives it exactly one leading-space token.
"""

NAMES: tuple[str, ...] = (
    "Mary", "John", "Anna", "Paul", "Kate", "James", "Sarah", "David", "Emma", "Michael",
    "Laura", "Daniel", "Alice", "Robert", "Linda", "Thomas", "Helen", "Peter", "Susan", "George",
    "Karen", "Edward", "Nancy", "Henry", "Lisa", "Frank", "Julia", "Steven", "Clara", "Brian",
    "Diana", "Kevin", "Rachel", "Jason", "Monica", "Eric", "Amy", "Adam", "Lucy", "Simon",
    "Jane", "Oliver", "Megan", "Victor", "Hannah", "Martin", "Ruth", "Oscar", "Sophie", "Nathan",
    "Ellen", "Philip", "Irene", "Carl", "Teresa", "Dennis", "Nora", "Walter", "Martha", "Albert",
    "Louise", "Harold", "Wendy", "Ralph", "Olivia", "Roger", "Fiona", "Arthur", "Gloria", "Stanley",
    "Heidi", "Leonard", "Joan", "Bruce", "Vera", "Gordon", "Agnes", "Howard", "Edith", "Felix",
    "Ingrid", "Hugo", "Tina", "Ivan", "Paula", "Lewis", "Naomi", "Marcus", "Bella", "Derek",
    "Carmen", "Dylan", "Greta", "Owen", "Iris", "Ryan", "Leah", "Sean", "Mona", "Tyler",
    "Zoe", "Colin", "Erin", "Neil", "Tessa", "Glen", "Dora", "Ian", "Judy", "Kurt",
    "Lydia", "Rex", "Mabel", "Otto", "Yvonne", "Boris", "Wanda", "Elliot", "Hazel", "Gavin",
)

PLACES: tuple[str, ...] = (
    "store", "garden", "restaurant", "school", "hospital", "office", "house", "station", "park", "library",
    "market", "beach", "museum", "church", "bakery", "harbor", "farm", "castle", "theater", "cafe",
    "airport", "bank", "hotel", "forest", "lake", "zoo", "gym", "mall",
)

# Consonant-initial so that "gave a {object}" reads naturally.
OBJECTS: tuple[str, ...] = (
    "drink", "ring", "book", "bone", "basket", "cake", "pen", "letter", "ball", "box",
    "cup", "gift", "hat", "key", "lamp", "map", "note", "coin", "flower", "kite",
    "toy", "shirt", "sandwich", "bottle", "camera", "candle", "guitar", "necklace", "pencil", "ticket",
    "watch", "wallet", "phone", "bag", "bowl", "doll", "drum", "jar",
)

# Things that last from one year to another (Greater-Than spans).
EVENT_NOUNS: tuple[str, ...] = (
    "war", "plague", "drought", "famine", "siege", "expedition", "voyage", "reign", "trial", "strike",
    "festival", "campaign", "rebellion", "dynasty", "crusade", "journey", "conflict", "occupation", "exile",
    "migration", "survey", "construction", "blockade", "truce", "boom", "crisis", "epidemic", "revolt",
    "partnership", "monarchy", "alliance", "excavation", "tournament", "feud", "mission", "embargo",
)

# Words used only by the filler narrative grammar (besides the lists above and the relation words).
FILLER_VERBS: tuple[str, ...] = (
    "walked", "slept", "waited", "sang", "danced", "worked", "played", "rested", "smiled", "laughed",
)
FILLER_WEATHER: tuple[str, ...] = ("rain", "snow", "wind", "sun", "fog", "storm")
FILLER_TIMES: tuple[str, ...] = ("morning", "evening", "night", "afternoon", "week", "day")
