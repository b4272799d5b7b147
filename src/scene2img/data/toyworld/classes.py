"""What the toy world holds, and the real datasets' class tables it writes them with.

The toy classes (`THINGS`, `STUFF`) exist in all three real vocabularies; each carries its name or
id in every format. `PALETTE` maps the colour attributes to the RGB they are painted in. The real
tables (COCO-Stuff's class names and supercategories, ADE20K's `objectInfo150.txt`) are written
out as the datasets ship them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToyClass:
    """One toy-world class under its name/id in each format."""

    vg: str  # Visual Genome name (in the sg2im vocabulary)
    synset: str  # VG synset
    coco: int  # COCO-Stuff class id (1-91 things, 92-182 stuff)
    ade: int  # ADE20K SceneParsing Idx (1-150)


THINGS: dict[str, ToyClass] = {
    "person": ToyClass("person", "person.n.01", 1, 13),
    "car": ToyClass("car", "car.n.01", 3, 21),
    "bus": ToyClass("bus", "bus.n.01", 6, 81),
    "boat": ToyClass("boat", "boat.n.01", 9, 77),
    "bench": ToyClass("bench", "bench.n.01", 15, 70),
    "ball": ToyClass("ball", "ball.n.01", 37, 120),  # COCO: "sports ball"
    "airplane": ToyClass("plane", "airplane.n.01", 5, 91),  # VG: "plane"
    "house": ToyClass("house", "house.n.01", 128, 26),  # a stuff class in COCO-Stuff
    "tree": ToyClass("tree", "tree.n.01", 169, 5),  # a stuff class in COCO-Stuff
}
STUFF: dict[str, ToyClass] = {
    "sky": ToyClass("sky", "sky.n.01", 157, 3),  # COCO: "sky-other"
    "grass": ToyClass("grass", "grass.n.01", 124, 10),
    "sand": ToyClass("sand", "sand.n.01", 154, 47),
    "sea": ToyClass("water", "water.n.01", 155, 27),  # VG: "water"
    "road": ToyClass("road", "road.n.01", 149, 7),
    "mountain": ToyClass("mountain", "mountain.n.01", 135, 17),
}
# Parts are annotated in Visual Genome only ("car has wheel").
PART_SYNSETS = {
    "wheel": "wheel.n.01",
    "window": "window.n.01",
    "door": "door.n.01",
    "roof": "roof.n.01",
    "head": "head.n.01",
    "trunk": "trunk.n.01",
}
COCO_OTHER = 183  # COCO-Stuff's "other": the pixels of thing classes, in the stuff files

# Colours from the VG attribute vocabulary, and the RGB each is painted with.
PALETTE: dict[str, tuple[int, int, int]] = {
    "white": (238, 238, 238),
    "black": (28, 28, 30),
    "gray": (128, 128, 128),
    "red": (200, 35, 35),
    "green": (45, 150, 55),
    "blue": (40, 70, 200),
    "yellow": (235, 205, 40),
    "orange": (240, 130, 25),
    "brown": (120, 72, 35),
    "pink": (240, 135, 175),
    "purple": (125, 50, 160),
}


# --------------------------------------------------------------------------------------------
# the real class tables
# fmt: off

COCO_THING_SUPER: dict[str, tuple[str, ...]] = {
    "person": ("person",),
    "vehicle": ("bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"),
    "outdoor": ("traffic light", "fire hydrant", "stop sign", "parking meter", "bench"),
    "animal": ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
               "giraffe"),
    "accessory": ("backpack", "umbrella", "handbag", "tie", "suitcase"),
    "sports": ("frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat",
               "baseball glove", "skateboard", "surfboard", "tennis racket"),
    "kitchen": ("bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl"),
    "food": ("banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
             "donut", "cake"),
    "furniture": ("chair", "couch", "potted plant", "bed", "dining table", "toilet"),
    "electronic": ("tv", "laptop", "mouse", "remote", "keyboard", "cell phone"),
    "appliance": ("microwave", "oven", "toaster", "sink", "refrigerator"),
    "indoor": ("book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"),
}
COCO_STUFF_SUPER: dict[str, str] = {
    "textile": "banner blanket cloth clothes curtain mat napkin pillow rug textile-other towel",
    "plant": "branch bush flower grass leaves moss plant-other straw tree",
    "building": "bridge building-other house roof skyscraper tent",
    "furniture-stuff": "cabinet counter cupboard desk-stuff door-stuff furniture-other light "
    "mirror-stuff shelf stairs table",
    "structural": "cage fence net railing structural-other",
    "raw-material": "cardboard metal paper plastic",
    "floor": "carpet floor-marble floor-other floor-stone floor-tile floor-wood",
    "ceiling": "ceiling-other ceiling-tile",
    "sky": "clouds sky-other",
    "ground": "dirt gravel ground-other mud pavement platform playingfield railroad road sand snow",
    "water": "fog river sea water-other waterdrops",
    "food-stuff": "food-other fruit salad vegetable",
    "solid": "hill mountain rock solid-other stone wood",
    "wall": "wall-brick wall-concrete wall-other wall-panel wall-stone wall-tile wall-wood",
    "window": "window-blind window-other",
}

# COCO-Stuff class table (labels.txt): index = class id, 0 = unlabeled.
COCO_STUFF_NAMES: tuple[str, ...] = (
    "unlabeled", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
    "boat", "traffic light", "fire hydrant", "street sign", "stop sign", "parking meter", "bench",
    "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "hat",
    "backpack", "umbrella", "shoe", "eye glasses", "handbag", "tie", "suitcase", "frisbee", "skis",
    "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard",
    "surfboard", "tennis racket", "bottle", "plate", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
    "donut", "cake", "chair", "couch", "potted plant", "bed", "mirror", "dining table", "window",
    "desk", "toilet", "door", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "blender", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush", "hair brush", "banner", "blanket",
    "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard", "carpet",
    "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard",
    "curtain", "desk-stuff", "dirt", "door-stuff", "fence", "floor-marble", "floor-other",
    "floor-stone", "floor-tile", "floor-wood", "flower", "fog", "food-other", "fruit",
    "furniture-other", "grass", "gravel", "ground-other", "hill", "house", "leaves", "light",
    "mat", "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper",
    "pavement", "pillow", "plant-other", "plastic", "platform", "playingfield", "railing",
    "railroad", "river", "road", "rock", "roof", "rug", "salad", "sand", "sea", "shelf",
    "sky-other", "skyscraper", "snow", "solid-other", "stairs", "stone", "straw",
    "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable",
    "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile",
    "wall-wood", "water-other", "waterdrops", "window-blind", "window-other", "wood",
)

# ADE20K SceneParsing objectInfo150.txt, line by line as shipped (stray spaces included).
ADE_OBJECT_INFO_LINES: tuple[str, ...] = (
    "Idx\tRatio\tTrain\tVal\tName",
    "1\t0.1576\t11664\t1172\twall",
    "2\t0.1072\t6046\t612\tbuilding, edifice",
    "3\t0.0878\t8265\t796\tsky",
    "4\t0.0621\t9336\t917\tfloor, flooring",
    "5\t0.0480\t6678\t641\ttree",
    "6\t0.0450\t6604\t643\tceiling",
    "7\t0.0398\t4023\t408\troad, route",
    "8\t0.0231\t1906\t199\tbed ",
    "9\t0.0198\t4688\t460\twindowpane, window ",
    "10\t0.0183\t2423\t225\tgrass",
    "11\t0.0181\t2874\t294\tcabinet",
    "12\t0.0166\t3068\t310\tsidewalk, pavement",
    "13\t0.0160\t5075\t526\tperson, individual, someone, somebody, mortal, soul",
    "14\t0.0151\t1804\t190\tearth, ground",
    "15\t0.0118\t6666\t796\tdoor, double door",
    "16\t0.0110\t4269\t411\ttable",
    "17\t0.0109\t1691\t160\tmountain, mount",
    "18\t0.0104\t3999\t441\tplant, flora, plant life",
    "19\t0.0104\t2149\t217\tcurtain, drape, drapery, mantle, pall",
    "20\t0.0103\t3261\t318\tchair",
    "21\t0.0098\t3164\t306\tcar, auto, automobile, machine, motorcar",
    "22 \t0.0074\t709\t75\twater",
    "23\t0.0067\t3296\t315\tpainting, picture",
    "24 \t0.0065\t1191\t106\tsofa, couch, lounge",
    "25 \t0.0061\t1516\t162\tshelf",
    "26 \t0.0060\t667\t69\thouse",
    "27 \t0.0053\t651\t57\tsea",
    "28\t0.0052\t1847\t224\tmirror",
    "29\t0.0046\t1158\t128\trug, carpet, carpeting",
    "30\t0.0044\t480\t44\tfield",
    "31\t0.0044\t1172\t98\tarmchair",
    "32\t0.0044\t1292\t184\tseat",
    "33\t0.0033\t1386\t138\tfence, fencing",
    "34\t0.0031\t698\t61\tdesk",
    "35\t0.0030\t781\t73\trock, stone",
    "36\t0.0027\t380\t43\twardrobe, closet, press",
    "37\t0.0026\t3089\t302\tlamp",
    "38\t0.0024\t404\t37\tbathtub, bathing tub, bath, tub",
    "39\t0.0024\t804\t99\trailing, rail",
    "40\t0.0023\t1453\t153\tcushion",
    "41\t0.0023\t411\t37\tbase, pedestal, stand",
    "42\t0.0022\t1440\t162\tbox",
    "43\t0.0022\t800\t77\tcolumn, pillar",
    "44\t0.0020\t2650\t298\tsignboard, sign",
    "45\t0.0019\t549\t46\tchest of drawers, chest, bureau, dresser",
    "46\t0.0019\t367\t36\tcounter",
    "47\t0.0018\t311\t30\tsand",
    "48\t0.0018\t1181\t122\tsink",
    "49\t0.0018\t287\t23\tskyscraper",
    "50\t0.0018\t468\t38\tfireplace, hearth, open fireplace",
    "51\t0.0018\t402\t43\trefrigerator, icebox",
    "52\t0.0018\t130\t12\tgrandstand, covered stand",
    "53\t0.0018\t561\t64\tpath",
    "54\t0.0017\t880\t102\tstairs, steps",
    "55\t0.0017\t86\t12\trunway",
    "56\t0.0017\t172\t11\tcase, display case, showcase, vitrine",
    "57\t0.0017\t198\t18\tpool table, billiard table, snooker table",
    "58\t0.0017\t930\t109\tpillow",
    "59\t0.0015\t139\t18\tscreen door, screen",
    "60\t0.0015\t564\t52\tstairway, staircase",
    "61\t0.0015\t320\t26\triver",
    "62\t0.0015\t261\t29\tbridge, span",
    "63\t0.0014\t275\t22\tbookcase",
    "64\t0.0014\t335\t60\tblind, screen",
    "65\t0.0014\t792\t75\tcoffee table, cocktail table",
    "66\t0.0014\t395\t49\ttoilet, can, commode, crapper, pot, potty, stool, throne",
    "67\t0.0014\t1309\t138\tflower",
    "68\t0.0013\t1112\t113\tbook",
    "69\t0.0013\t266\t27\thill",
    "70\t0.0013\t659\t66\tbench",
    "71\t0.0012\t331\t31\tcountertop",
    "72\t0.0012\t531\t56\tstove, kitchen stove, range, kitchen range, cooking stove",
    "73\t0.0012\t369\t36\tpalm, palm tree",
    "74\t0.0012\t144\t9\tkitchen island",
    (
        "75\t0.0011\t265\t29\tcomputer, computing machine, computing device, data processor"
        ", electronic computer, information processing system"
    ),
    "76\t0.0010\t324\t33\tswivel chair",
    "77\t0.0009\t304\t27\tboat",
    "78\t0.0009\t170\t20\tbar",
    "79\t0.0009\t68\t6\tarcade machine",
    "80\t0.0009\t65\t8\thovel, hut, hutch, shack, shanty",
    (
        "81\t0.0009\t248\t25\tbus, autobus, coach, charabanc, double-decker, jitney, motorbus"
        ", motorcoach, omnibus, passenger vehicle"
    ),
    "82\t0.0008\t492\t49\ttowel",
    "83\t0.0008\t2510\t269\tlight, light source",
    "84\t0.0008\t440\t39\ttruck, motortruck",
    "85\t0.0008\t147\t18\ttower",
    "86\t0.0008\t583\t56\tchandelier, pendant, pendent",
    "87\t0.0007\t533\t61\tawning, sunshade, sunblind",
    "88\t0.0007\t1989\t239\tstreetlight, street lamp",
    "89\t0.0007\t71\t5\tbooth, cubicle, stall, kiosk",
    (
        "90\t0.0007\t618\t53\ttelevision receiver, television, television set, tv, tv set"
        ", idiot box, boob tube, telly, goggle box"
    ),
    "91\t0.0007\t135\t12\tairplane, aeroplane, plane",
    "92\t0.0007\t83\t5\tdirt track",
    "93\t0.0007\t178\t17\tapparel, wearing apparel, dress, clothes",
    "94\t0.0006\t1003\t104\tpole",
    "95\t0.0006\t182\t12\tland, ground, soil",
    "96\t0.0006\t452\t50\tbannister, banister, balustrade, balusters, handrail",
    "97\t0.0006\t42\t6\tescalator, moving staircase, moving stairway",
    "98\t0.0006\t307\t31\tottoman, pouf, pouffe, puff, hassock",
    "99\t0.0006\t965\t114\tbottle",
    "100\t0.0006\t117\t13\tbuffet, counter, sideboard",
    "101\t0.0006\t354\t35\tposter, posting, placard, notice, bill, card",
    "102\t0.0006\t108\t9\tstage",
    "103\t0.0006\t557\t55\tvan",
    "104\t0.0006\t52\t4\tship",
    "105\t0.0005\t99\t5\tfountain",
    "106\t0.0005\t57\t4\tconveyer belt, conveyor belt, conveyer, conveyor, transporter",
    "107\t0.0005\t292\t31\tcanopy",
    "108\t0.0005\t77\t9\twasher, automatic washer, washing machine",
    "109\t0.0005\t340\t38\tplaything, toy",
    "110\t0.0005\t66\t3\tswimming pool, swimming bath, natatorium",
    "111\t0.0005\t465\t49\tstool",
    "112\t0.0005\t50\t4\tbarrel, cask",
    "113\t0.0005\t622\t75\tbasket, handbasket",
    "114\t0.0005\t80\t9\twaterfall, falls",
    "115\t0.0005\t59\t3\ttent, collapsible shelter",
    "116\t0.0005\t531\t72\tbag",
    "117\t0.0005\t282\t30\tminibike, motorbike",
    "118\t0.0005\t73\t7\tcradle",
    "119\t0.0005\t435\t44\toven",
    "120\t0.0005\t136\t25\tball",
    "121\t0.0005\t116\t24\tfood, solid food",
    "122\t0.0004\t266\t31\tstep, stair",
    "123\t0.0004\t58\t12\ttank, storage tank",
    "124\t0.0004\t418\t83\ttrade name, brand name, brand, marque",
    "125\t0.0004\t319\t43\tmicrowave, microwave oven",
    "126\t0.0004\t1193\t139\tpot, flowerpot",
    "127\t0.0004\t97\t23\tanimal, animate being, beast, brute, creature, fauna",
    "128\t0.0004\t347\t36\tbicycle, bike, wheel, cycle ",
    "129\t0.0004\t52\t5\tlake",
    "130\t0.0004\t246\t22\tdishwasher, dish washer, dishwashing machine",
    "131\t0.0004\t108\t13\tscreen, silver screen, projection screen",
    "132\t0.0004\t201\t30\tblanket, cover",
    "133\t0.0004\t285\t21\tsculpture",
    "134\t0.0004\t268\t27\thood, exhaust hood",
    "135\t0.0003\t1020\t108\tsconce",
    "136\t0.0003\t1282\t122\tvase",
    "137\t0.0003\t528\t65\ttraffic light, traffic signal, stoplight",
    "138\t0.0003\t453\t57\ttray",
    (
        "139\t0.0003\t671\t100\tashcan, trash can, garbage can, wastebin, ash bin, ash-bin"
        ", ashbin, dustbin, trash barrel, trash bin"
    ),
    "140\t0.0003\t397\t44\tfan",
    "141\t0.0003\t92\t8\tpier, wharf, wharfage, dock",
    "142\t0.0003\t228\t18\tcrt screen",
    "143\t0.0003\t570\t59\tplate",
    "144\t0.0003\t217\t22\tmonitor, monitoring device",
    "145\t0.0003\t206\t19\tbulletin board, notice board",
    "146\t0.0003\t130\t14\tshower",
    "147\t0.0003\t178\t28\tradiator",
    "148\t0.0002\t504\t57\tglass, drinking glass",
    "149\t0.0002\t775\t96\tclock",
    "150\t0.0002\t421\t56\tflag",
)
# fmt: on
