"""Baseline/regressed response pairs modelled on the seed incident (shared by the metric tests)."""

SPANISH_BASE = "El clima está hermoso hoy y planeo ir de caminata a las montañas."
SPANISH_CJK = "El clima está hermoso hoy y我 plane to go hiking in the mountains."
SPANISH_EN_SENTENCE = (
    "El clima está hermoso hoy y planeo ir de caminata a las montañas. "
    "I will bring water and some food for the whole day."
)
SPANISH_REFERENCE = "El clima está precioso hoy y pienso ir de excursión a las montañas."

MONAD_BASE = (
    "This is a great question about functional programming concepts. Let me explain monads clearly "
    "with practical examples. A monad is a design pattern in functional programming that allows for "
    "sequencing computations while carrying context. In Haskell, the Maybe monad chains operations "
    "with the bind operator (>>=): if any step returns Nothing, the whole computation short-circuits. "
    "In Python you can model a monad with a class that wraps a value and exposes a bind method."
)
MONAD_DENIAL = (
    'Actually, there no such term as "monad" in functional programming. You may be confusing it with '
    "one of the following similar concepts: functors, monoids or modules in Haskell programming."
)

RIVER_BASE = (
    "Here is a complete solution to the river crossing puzzle. The farmer can only take one item at a "
    "time, the fox cannot be left alone with the chicken, and the chicken cannot be left alone with the "
    "corn. Step 1: the farmer takes the chicken across the river and leaves it on the far bank. Step 2: "
    "the farmer returns alone to the starting bank. Step 3: the farmer takes the fox across the river. "
    "Step 4: the farmer leaves the fox on the far bank but brings the chicken back with him to the "
    "starting bank, so the fox and the chicken are never alone together. Step 5: the farmer leaves the "
    "chicken on the starting bank and takes the bag of corn across the river. Step 6: the farmer leaves "
    "the corn with the fox, which does not eat corn, and returns alone to the starting bank. Step 7: "
    "the farmer takes the chicken across the river one final time. Now the farmer, the fox, the chicken "
    "and the bag of corn are all safely on the far bank, and at no point was the fox left alone with "
    "the chicken or the chicken left alone with the corn. That is the whole solution in seven crossings."
)
RIVER_CUT = (
    "A farmer needs to cross a river with a fox, a chicken, and a bag of corn. The boat can carry only "
    "the farmer and one item. The fox would eat the chicken and the chicken would eat the corn. Hmm."
)
