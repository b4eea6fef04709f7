// Package chunk encodes the values of one series over one block of steps.
//
// Blocks are step-aligned, so timestamps are implicit: slot i of a block is
// step i of its period, and an empty slot holds Missing. A sealed block is
// encoded once, in the cheapest of several encodings that represents its
// values bit-exactly (Encoder chooses by computing every candidate's size):
//
//   - const: one value, for constants and all-empty blocks;
//   - dict: few distinct values (flags, enums);
//   - scaled FOR/delta: values that are integers over a small divisor, such
//     as counter rates (an integer count per publishing interval) and
//     decimals;
//   - float FOR/delta: order-preserving float bits, for full-precision noise
//     such as random-walk gauges, within a bit of their entropy;
//   - XOR: Gorilla's encoding, for anything else.
//
// Integers are written with truncated binary codes in a layout that decodes
// without a dependency from one code to the next (bits.go); presence is run
// lengths or a bitmap. FORMAT.md gives the byte layout.
//
// Open is the mutable block of the current period: appendable, compact, and
// cheap to update in the current step.
//
// Decoding never panics on bad input: it returns an error wrapping
// ErrCorrupt, and fuzz tests hold it to that.
package chunk
