package lib

import "math"

var nan = math.NaN()
