import Foundation
import LowBit

/// The CSV reader (wide and long layouts): a dataset or a `LowBitError`, never a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    do { _ = try CSVFile.parse(text, path: "fuzz.csv") } catch is LowBitError {} catch { fatalError("not a LowBitError: \(error)") }
    return 0
}
