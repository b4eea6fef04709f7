package expr

import "github.com/sextant-dev/sextant/query/stack"

// Vocabulary is the complete stack language: every vocabulary above.
var Vocabulary = StyleVocabulary

// Vocabularies lists the vocabularies in layer order, for docs.
var Vocabularies = []*stack.Vocabulary{stack.Std, QueryVocabulary, DataVocabulary, MathVocabulary,
	StatefulVocabulary, FilterVocabulary, StyleVocabulary}

// NewInterpreter returns an interpreter for the complete language.
func NewInterpreter() *stack.Interpreter { return stack.New(Vocabulary) }
