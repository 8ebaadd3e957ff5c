"""The confluence notebook's parameter sheet, star-imported by strategy.confluence."""

VOLUME_SURGE = 1.8
A_GRADE_POINTS = 5
B_GRADE_POINTS = 3
