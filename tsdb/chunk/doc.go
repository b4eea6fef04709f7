// Package chunk encodes the values of one series over one block of steps.
//
// Blocks are step-aligned, so timestamps are implicit: slot i of a block is
// step i of its period, and an empty slot holds Missing. A sealed block is
// encoded once, in the cheapest of several encodings that represents its
// values bit-exactly. Encoder picks it from statistics of one pass over the
// values (their kind, range, delta range, repeats) and sizes only the
// encodings those leave in the running, never writing one to measure it;
// Encoder.Seal starts from an open block, whose values are already
// integers of the right kind:
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
// Open is the mutable block of the current period: appendable, compact
// (deltas packed by bits), and cheap to update in the current step.
// Open.Load reopens a sealed block, for a period that gets writes after
// its block was sealed.
//
// Decoding never panics on bad input: it returns an error wrapping
// ErrCorrupt, and fuzz tests hold it to that.
package chunk
