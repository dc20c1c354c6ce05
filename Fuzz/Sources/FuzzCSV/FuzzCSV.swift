import Foundation
import FuzzSupport
import LowBit

/// The CSV reader (wide and long layouts): a dataset or a `LowBitError`, never a crash.
@_cdecl("FuzzCSV_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    lowbit_fuzz_run(argc, argv) { data, size in fuzz(UnsafeRawPointer(data!), size) }
}

func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    do { _ = try CSVFile.parse(text, path: "fuzz.csv") } catch is LowBitError {} catch { fatalError("not a LowBitError: \(error)") }
    return 0
}
