"""Word lists and templates for the built-in tasks, written for rcid_tl (each word one GPT-2 token after a space).

The reference lists of Wang et al. 2023 and Hanna et al. 2023 are used only by tests, never copied here.
"""

NAMES: tuple[str, ...] = tuple(
    "Mary John Tom James Dan Michael David Paul Mark Lisa Anna Kate Emma Jane Alice Bob Ben Sam Max Jack Luke Adam "
    "Ryan Eric Kevin Steve Chris Amy Rose Laura Grace Helen Ruth Carl Frank George Henry Peter Tim Joe Nick Alex Greg "
    "Jeff Karen Linda Susan Julia Sarah Anne Rachel Matt Jason Brian Scott Andrew Daniel Thomas Richard Robert William "
    "Charles Joseph Edward Victoria Jessica Jennifer Elizabeth Maria Martin Simon Patrick Sean Ian Neil Roger Harry "
    "Jake Ethan Kyle Lucy Megan Nancy Diana Hannah Olivia Sophie Leo Oscar Hugo".split()
)

PLACES: tuple[str, ...] = tuple(
    "store garden restaurant school hospital office house station park library church market beach farm kitchen "
    "museum hotel bank lake forest".split()
)

OBJECTS: tuple[str, ...] = tuple(
    "drink book ring bone ball computer necklace snack gift letter bag pen key cake toy hat phone card flower "
    "shirt".split()
)

# "[B]" is the subject S and "[A]" the indirect object IO; this is the BABA order (S first). ABBA swaps the first
# clause's names. Each placeholder is preceded by the space its word's token carries, so filling never adds spaces.
IOI_TEMPLATES: tuple[str, ...] = (
    "When [B] and [A] went to the [PLACE], [B] gave a [OBJECT] to",
    "After [B] and [A] arrived at the [PLACE], [B] handed a [OBJECT] to",
    "While [B] and [A] were working at the [PLACE], [B] passed a [OBJECT] to",
    "Then, [B] and [A] had a long walk to the [PLACE]. [B] gave a [OBJECT] to",
    "Yesterday [B] and [A] visited the [PLACE], and [B] showed a [OBJECT] to",
    "At the [PLACE], [B] and [A] found a [OBJECT]. Afterwards [B] gave it to",
    "Once [B] and [A] got to the [PLACE], [B] threw a [OBJECT] to",
    "Today [B] and [A] met at the [PLACE]. Later, [B] sent a [OBJECT] to",
    "Since [B] and [A] were bored at the [PLACE], [B] brought a [OBJECT] to",
    "On Monday [B] and [A] cleaned the [PLACE], so [B] offered a [OBJECT] to",
    "Last week [B] and [A] walked into the [PLACE], where [B] sold a [OBJECT] to",
    "Before [B] and [A] left the [PLACE], [B] returned a [OBJECT] to",
    "As soon as [B] and [A] reached the [PLACE], [B] tossed a [OBJECT] to",
    "In the morning [B] and [A] drove to the [PLACE], and [B] mailed a [OBJECT] to",
    "When [B] and [A] sat down in the [PLACE], [B] passed a [OBJECT] to",
)

GT_NOUNS: tuple[str, ...] = tuple(
    "war trip project strike drought reign journey campaign dispute program contract conflict crisis flood famine "
    "siege tour study survey festival boom career marriage treaty partnership expedition voyage exhibition epidemic "
    "occupation rebellion recession revolution deal battle game season course trial mission".split()
)

GT_TEMPLATE = "The [NOUN] lasted from the year [XX][YY] to the year [XX]"
GT_CENTURIES: tuple[int, ...] = tuple(range(11, 20))  # 1100s..1900s, as in Hanna et al.'s 1000–1900 range
