// Train every mode on a .ts file, save the packed ensembles, load one and classify a series
// it has not seen. Usage: ClassifySeries TRAIN.ts TEST.ts DIRECTORY
import Foundation
import LowBit

let arguments = CommandLine.arguments
let train = try Datasets.read(arguments[1]), test = try Datasets.read(arguments[2])

// Every mode (float, int8, int4, ternary, binary), each an ensemble of two, with the recipe
// of `lowbit train` for this data; a small model and 100 steps, so that it runs in seconds.
let comparison = ModeComparison(for: train, base: TrainingSettings(width: 16, layerCount: 1, headCount: 2),
                                recipe: TrainingRecipe(steps: 100), directory: URL(fileURLWithPath: arguments[3]))
let results = try comparison.run(train: train, evaluation: test)   // checkpoints and packed models saved
for r in results { print(r.settings.modeName, r.evaluation.accuracy, r.model.weightBytes, r.modelFile.path) }

// Load the packed ternary ensemble; a new series is its steps, each step its channels' values.
let ternary = try PackedClassifier.load(from: results[3].modelFile)
let flat = test.series[0], channels = test.channels
let series = stride(from: 0, to: flat.count, by: channels).map { Array(flat[$0..<$0 + channels]) }
let answer = try ternary.classify(series)
print("classified as", answer.label, "with probability", answer.probability(of: answer.label)!,
      "(labelled", test.classNames[test.labels[0]] + ")")
