import Foundation

/// The safetensors format: an 8-byte little-endian header length, a JSON header
/// `{name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}`, then the raw
/// little-endian tensor bytes. Readable by other tools (the Python `safetensors` package).
public enum SafeTensors {
    /// An element type, spelled as in the safetensors header.
    public enum DType: String, Sendable, CaseIterable {
        /// 32- and 64-bit floats, 64- and 32-bit signed integers, and signed and unsigned bytes,
        /// all little-endian in the file.
        case F32, F64, I64, I32, I8, U8
        /// The number of bytes per element.
        public var size: Int {
            switch self {
            case .F64, .I64: 8
            case .F32, .I32: 4
            case .I8, .U8: 1
            }
        }
    }

    /// One tensor: its element type, its shape and its raw bytes.
    public struct Entry: Sendable {
        /// The element type of ``SafeTensors/Entry/data``.
        public var dtype: DType
        /// The extent of each dimension; `[]` holds one element.
        public var shape: [Int]
        /// The raw elements, row-major and little-endian; ``SafeTensors/write(_:metadata:to:)``
        /// checks that their count is the element count of `shape` times the element size.
        public var data: [UInt8]

        /// Creates an entry from raw bytes, without checking their count against `shape` (the
        /// writer does).
        public init(dtype: DType, shape: [Int], data: [UInt8]) {
            self.dtype = dtype
            self.shape = shape
            self.data = data
        }

        /// Creates an `F32` entry holding `floats` in host byte order (little-endian on x86 and
        /// ARM).
        public init(floats: [Float], shape: [Int]) {
            self.init(dtype: .F32, shape: shape, data: floats.withUnsafeBytes { Array($0) })
        }

        /// Creates an `F64` entry holding `doubles` in host byte order (little-endian on x86 and
        /// ARM).
        public init(doubles: [Double], shape: [Int]) {
            self.init(dtype: .F64, shape: shape, data: doubles.withUnsafeBytes { Array($0) })
        }

        /// Creates an `I64` entry holding `int64s` in host byte order (little-endian on x86 and
        /// ARM).
        public init(int64s: [Int64], shape: [Int]) {
            self.init(dtype: .I64, shape: shape, data: int64s.withUnsafeBytes { Array($0) })
        }

        /// Creates a `U8` entry holding `bytes`.
        public init(bytes: [UInt8], shape: [Int]) {
            self.init(dtype: .U8, shape: shape, data: bytes)
        }

        func values<T: BitwiseCopyable>(_ type: T.Type, _ want: DType, _ name: String, _ path: String) throws -> [T] {
            guard dtype == want else { throw LowBitError.invalidFile(path: path, reason: "tensor '\(name)' is \(dtype.rawValue), expected \(want.rawValue)") }
            // Copied, not rebound: the bytes of a [UInt8] are neither bound to T nor aligned for it.
            let count = data.count / MemoryLayout<T>.stride
            return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                data.withUnsafeBytes { raw in
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[..<(count * MemoryLayout<T>.stride)]))
                }
                initialized = count
            }
        }
        /// Returns the elements as `Float`; throws ``LowBitError/invalidFile(path:reason:)``
        /// naming tensor `name` of file `path` unless the dtype is `F32`.
        public func floats(_ name: String, _ path: String) throws -> [Float] { try values(Float.self, .F32, name, path) }
        /// Returns the elements as `Double`; throws ``LowBitError/invalidFile(path:reason:)``
        /// naming tensor `name` of file `path` unless the dtype is `F64`.
        public func doubles(_ name: String, _ path: String) throws -> [Double] { try values(Double.self, .F64, name, path) }
        /// Returns the elements as `Int64`; throws ``LowBitError/invalidFile(path:reason:)``
        /// naming tensor `name` of file `path` unless the dtype is `I64`.
        public func int64s(_ name: String, _ path: String) throws -> [Int64] { try values(Int64.self, .I64, name, path) }
        /// Returns the elements as bytes; throws ``LowBitError/invalidFile(path:reason:)``
        /// naming tensor `name` of file `path` unless the dtype is `U8`.
        public func bytes(_ name: String, _ path: String) throws -> [UInt8] { try values(UInt8.self, .U8, name, path) }
    }

    /// Writes atomically: to a temporary file beside `path`, flushed, then renamed over it,
    /// so that an interrupted write never leaves a half-written file at `path`.
    public static func write(_ tensors: [String: Entry], metadata: [String: String], to path: String) throws {
        let names = tensors.keys.sorted()
        var crc: UInt32 = 0
        for name in names { crc = tensors[name]!.data.withUnsafeBytes { CRC32C.checksum($0, continuing: crc) } }
        var header: [String: Any] = ["__metadata__": metadata.merging([checksumKey: CRC32C.hex(crc)]) { $1 }]
        var offset = 0
        for name in names {
            let e = tensors[name]!
            guard e.shape.allSatisfy({ $0 >= 0 }), e.data.count == byteCount(e.shape, e.dtype) else {
                throw LowBitError.invalidArgument("tensor '\(name)': \(e.data.count) bytes for shape \(e.shape) of \(e.dtype.rawValue)")
            }
            header[name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, offset + e.data.count]]
            offset += e.data.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }  // pad with spaces, as the format allows
        var file = Data()
        var n = UInt64(json.count).littleEndian
        file.append(Data(bytes: &n, count: 8))
        file.append(json)
        for name in names { file.append(contentsOf: tensors[name]!.data) }
        let temp = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        guard FileManager.default.createFile(atPath: temp, contents: nil) , let handle = FileHandle(forWritingAtPath: temp) else {
            throw LowBitError.invalidFile(path: path, reason: "cannot create \(temp)")
        }
        do {
            try handle.write(contentsOf: file)
            try handle.synchronize()
            try handle.close()
        } catch {
            try? FileManager.default.removeItem(atPath: temp)
            throw LowBitError.invalidFile(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
        guard rename(temp, path) == 0 else {
            try? FileManager.default.removeItem(atPath: temp)
            throw LowBitError.invalidFile(path: path, reason: "cannot move the written file into place (errno \(errno))")
        }
    }

    /// Bytes of a tensor of `shape` and `dtype`, or nil when the product overflows.
    static func byteCount(_ shape: [Int], _ dtype: DType) -> Int? {
        var n = dtype.size
        for d in shape {
            let (product, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = product
        }
        return n
    }

    /// The metadata entry with the CRC-32C of the tensor bytes (in file order), written by
    /// ``write(_:metadata:to:)`` and checked by ``read(_:)`` when present (files from other
    /// tools have none).
    public static let checksumKey = "lowbit.crc32c"

    /// Reads and validates a file: every offset in range, sizes matching dtype and shape,
    /// no overlaps, the checksum of the tensor bytes when the file has one; anything else is
    /// ``LowBitError/invalidFile(path:reason:)``.
    public static func read(_ path: String) throws -> (tensors: [String: Entry], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LowBitError.invalidFile(path: path, reason: "cannot be read (missing or not a file)")
        }
        return try parse(data, path: path)
    }

    /// The `__metadata__` of the file at `path`, from its header alone: for deciding what a file
    /// is before reading (and checking) all of it with ``read(_:)``.
    ///
    /// - Throws: ``LowBitError/invalidFile(path:reason:)`` if the file cannot be read, is shorter
    ///   than its header says, or its header is not a JSON object mapping strings to strings.
    public static func metadata(of path: String) throws -> [String: String] {
        func bad(_ reason: String) -> LowBitError { .invalidFile(path: path, reason: reason) }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw bad("cannot be read (missing or not a file)") }
        defer { try? handle.close() }
        let header: Data
        do {
            let size = try handle.seekToEnd()
            try handle.seek(toOffset: 0)
            guard size >= 8, let prefix = try handle.read(upToCount: 8), prefix.count == 8 else {
                throw bad("truncated: \(size) bytes, not even a header length")
            }
            let length = prefix.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            guard length <= size - 8, length <= 100_000_000 else {
                throw bad("truncated or corrupted: header of \(length) bytes in a file of \(size)")
            }
            header = try handle.read(upToCount: Int(length)) ?? Data()
            guard header.count == Int(length) else { throw bad("truncated: the header ends early") }
        } catch let error as LowBitError {
            throw error
        } catch {
            throw bad("cannot be read: \(error.localizedDescription)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: header), let fields = object as? [String: Any] else {
            throw bad("corrupted: the header is not a JSON object")
        }
        guard let value = fields["__metadata__"] else { return [:] }
        guard let metadata = value as? [String: String] else { throw bad("__metadata__ must map strings to strings") }
        return metadata
    }

    /// ``read(_:)`` of bytes already in memory; `path` names them in errors.
    public static func parse(_ bytes: Data, path: String) throws -> (tensors: [String: Entry], metadata: [String: String]) {
        func bad(_ reason: String) -> LowBitError { .invalidFile(path: path, reason: reason) }
        let data = bytes.startIndex == 0 ? bytes : Data(bytes)  // offsets below count from 0
        guard data.count >= 8 else { throw bad("truncated: \(data.count) bytes, not even a header length") }
        let headerLength = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(data.count - 8), headerLength <= 100_000_000 else {
            throw bad("truncated or corrupted: header of \(headerLength) bytes in a file of \(data.count)")
        }
        let body = 8 + Int(headerLength)
        guard let object = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<body)), let header = object as? [String: Any] else {
            throw bad("corrupted: the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var tensors: [String: Entry] = [:]
        var ranges: [(Int, Int, String)] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: String] else { throw bad("__metadata__ must map strings to strings") }
                metadata = m
                continue
            }
            guard let info = value as? [String: Any], let dt = info["dtype"] as? String, let shape = info["shape"] as? [Int],
                  let offsets = info["data_offsets"] as? [Int], offsets.count == 2 else {
                throw bad("tensor '\(name)' lacks dtype, shape or data_offsets")
            }
            guard let dtype = DType(rawValue: dt) else { throw bad("tensor '\(name)' has unsupported dtype \(dt)") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw bad("tensor '\(name)' has a negative dimension") }
            let (begin, end) = (offsets[0], offsets[1])
            // Compared without adding to the offsets, which come from the file and may be near Int.max.
            guard begin >= 0, end >= begin, end <= data.count - body else {
                throw bad("truncated or corrupted: tensor '\(name)' spans bytes \(begin)..<\(end) of a \(data.count - body)-byte body")
            }
            guard let size = byteCount(shape, dtype) else {
                throw bad("tensor '\(name)' has shape \(shape): more bytes than any file holds")
            }
            guard end - begin == size else {
                throw bad("tensor '\(name)' has \(end - begin) bytes for shape \(shape) of \(dt)")
            }
            ranges.append((begin, end, name))
            tensors[name] = Entry(dtype: dtype, shape: shape, data: [UInt8](data.subdata(in: (body + begin)..<(body + end))))
        }
        ranges.sort { $0.0 < $1.0 }
        for (a, b) in zip(ranges, ranges.dropFirst()) where b.0 < a.1 {
            throw bad("corrupted: tensors '\(a.2)' and '\(b.2)' overlap")
        }
        if let recorded = metadata[checksumKey] {
            var crc: UInt32 = 0
            data.withUnsafeBytes { raw in
                for (begin, end, _) in ranges { crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[(body + begin)..<(body + end)]), continuing: crc) }
            }
            guard CRC32C.hex(crc) == recorded.lowercased() else {
                throw bad("corrupted: the tensor bytes' CRC-32C is \(CRC32C.hex(crc)), the file records \(recorded)")
            }
        }
        return (tensors, metadata)
    }
}
