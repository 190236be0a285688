// The loops behind batch and layer normalization (Normalization.swift): a tensor viewed as
// `[outer, channels, inner]` around the normalized axis, statistics accumulated in `Double`, in fixed
// blocks combined in block order, so results do not depend on the thread count.

/// A tensor seen as `[outer, channels, inner]`: `channels` is the size of the normalization axis.
@usableFromInline
struct NormalizationLayout: Sendable {
    let outer: Int, channels: Int, inner: Int

    init(shape: [Int], axis: Int) {
        outer = Shape.product(shape[..<axis])
        channels = shape[axis]
        inner = Shape.product(shape[(axis + 1)...])
    }

    /// The elements per channel for batch normalization (all but the axis).
    var perChannel: Int { outer * inner }
    /// The rows for layer normalization (every position but the axis).
    var rows: Int { outer * inner }
}

/// How the outer indices are split into blocks: about 32768 elements per block, at most 64 blocks (so
/// that per-block partial sums stay small), from the shape alone, so sums do not depend on the thread count.
@inline(__always)
func outerBlocks(_ layout: NormalizationLayout) -> (perBlock: Int, count: Int) {
    let rowSize = Swift.max(1, layout.channels * layout.inner)
    let perBlock = Swift.max(Swift.max(1, (1 << 15) / rowSize), (layout.outer + 63) / 64)
    return (perBlock, Swift.max(1, (layout.outer + perBlock - 1) / perBlock))
}

/// Runs `body(block, outerRange)` for the blocks of ``outerBlocks(_:)``, in parallel; returns the number
/// of blocks.
@inline(__always)
func forEachOuterBlock(_ layout: NormalizationLayout, _ body: (Int, Range<Int>) -> Void) -> Int {
    let (perBlock, blocks) = outerBlocks(layout)
    let blockWork = Swift.max(1, perBlock * layout.channels * layout.inner)
    ThreadPool.parallelFor(blocks, grain: Swift.max(1, ThreadPool.kernelGrain / blockWork), alignment: 1) { range in
        for b in range { body(b, (b * perBlock)..<Swift.min(layout.outer, (b + 1) * perBlock)) }
    }
    return blocks
}

/// Per-channel sums over `[outer, inner]` in `Double`: `add(channel, flatIndex, accumulators)` adds
/// element `flatIndex`'s terms to its channel's `count` accumulators (`accumulators[count · channel + k]`);
/// the sums are `blocks × channels` partial sums added in block order.
@inline(__always)
func channelSums(_ layout: NormalizationLayout, count: Int = 1, _ add: (Int, Int, UnsafeMutablePointer<Double>) -> Void)
    -> [Double]
{
    let c = layout.channels, inner = layout.inner
    let blocks = outerBlocks(layout).count
    var partial = [Double](repeating: 0, count: blocks * c * count)
    partial.withUnsafeMutableBufferPointer { all in
        let base = UncheckedSendable(all.baseAddress!)
        _ = forEachOuterBlock(layout) { b, range in
            let acc = base.value + b * c * count
            for o in range {
                for ch in 0..<c {
                    let start = (o * c + ch) * inner
                    for i in 0..<inner { add(ch, start + i, acc) }
                }
            }
        }
    }
    var total = [Double](repeating: 0, count: c * count)
    for b in 0..<blocks { for k in 0..<(c * count) { total[k] += partial[b * c * count + k] } }
    return total
}

/// ``channelSums(_:count:_:)`` for channels last (`inner == 1`), a row of `channels` contiguous values
/// at a time: `add(o, accumulators)` adds row `o`'s terms to the block's `count · channels` accumulators
/// (`accumulators[k · channels + channel]`, so the loops over a row vectorize). Each channel's terms are
/// added in the same order as ``channelSums(_:count:_:)`` adds them (blocks from the shape, rows in
/// order), so the sums are the same bit for bit. Returns the sums in that layout.
@inline(__always)
func channelsLastSums(_ layout: NormalizationLayout, count: Int = 1, _ add: (Int, UnsafeMutablePointer<Double>) -> Void) -> [Double] {
    let width = layout.channels * count
    let blocks = outerBlocks(layout).count
    var partial = [Double](repeating: 0, count: blocks * width)
    partial.withUnsafeMutableBufferPointer { all in
        let base = UncheckedSendable(all.baseAddress!)
        _ = forEachOuterBlock(layout) { b, range in
            let acc = base.value + b * width
            for o in range { add(o, acc) }
        }
    }
    var total = [Double](repeating: 0, count: width)
    for b in 0..<blocks { for k in 0..<width { total[k] += partial[b * width + k] } }
    return total
}

/// Eight values of `p` as `Double`s (widened with `vcvtps2pd` for `Float`): the channels-last statistics add
/// eight channels at a time, each channel's terms still in row order, so the sums are the scalar loops'.
@inline(__always)
func loadDoubles<T: FloatingElement>(_ p: UnsafePointer<T>) -> SIMD8<Double> {
    if T.self == Float.self { return SIMD8<Double>(UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)) }
    return UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Double>.self)
}

/// Adds `v` to the eight accumulators at `p`.
@inline(__always)
func accumulate(_ v: SIMD8<Double>, into p: UnsafeMutablePointer<Double>) {
    let raw = UnsafeMutableRawPointer(p)
    raw.storeBytes(of: raw.loadUnaligned(as: SIMD8<Double>.self) + v, as: SIMD8<Double>.self)
}

/// Batch normalization's kernels (every axis but the channel axis reduced). Channels last (`inner ==
/// 1`, a convolution's `[batch, h, w, c]` or a Dense layer's `[batch, features]`) takes loops over the
/// contiguous channels of each row, which vectorize; the sums are the same as the general loops'.
enum BatchNormKernels {
    /// The per-channel mean and biased variance (two passes, `Double` sums, rounded to `T`).
    static func moments<T: FloatingElement>(_ x: UnsafePointer<T>, _ l: NormalizationLayout) -> (mean: [T], variance: [T]) {
        let n = Double(l.perChannel)
        if l.inner == 1 {
            let c = l.channels
            let vectorEnd = c & ~7
            let sums = channelsLastSums(l) { o, acc in
                let row = x + o * c
                var ch = 0
                while ch < vectorEnd {
                    accumulate(loadDoubles(row + ch), into: acc + ch)
                    ch += 8
                }
                for ch in vectorEnd..<c { acc[ch] += Double(row[ch]) }
            }
            let mean = sums.map { T($0 / n) }
            let meanD = mean.map { Double($0) }
            let squares = meanD.withUnsafeBufferPointer { m in
                channelsLastSums(l) { o, acc in
                    let row = x + o * c, means = m.baseAddress!
                    var ch = 0
                    while ch < vectorEnd {
                        let d = loadDoubles(row + ch) - loadDoubles(means + ch)
                        accumulate(d * d, into: acc + ch)
                        ch += 8
                    }
                    for ch in vectorEnd..<c {
                        let d = Double(row[ch]) - m[ch]
                        acc[ch] += d * d
                    }
                }
            }
            return (mean, squares.map { T($0 / n) })
        }
        let sums = channelSums(l) { ch, j, acc in acc[ch] += Double(x[j]) }
        let mean = sums.map { T($0 / n) }
        let meanD = mean.map { Double($0) }
        let squares = channelSums(l) { ch, j, acc in
            let d = Double(x[j]) - meanD[ch]
            acc[ch] += d * d
        }
        return (mean, squares.map { T($0 / n) })
    }

    /// `y = x · inv[c] + shift[c]`, with `inv = scale · rsqrt(variance + ε)` and
    /// `shift = offset − mean · inv` (TensorFlow's `tf.nn.batch_normalization`).
    static func apply<T: FloatingElement>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ l: NormalizationLayout,
                                          inv: [T], shift: [T]) {
        let c = l.channels, inner = l.inner
        let src = UncheckedSendable(x), dst = UncheckedSendable(y)
        if inner == 1 {
            inv.withUnsafeBufferPointer { a in
                shift.withUnsafeBufferPointer { b in
                    _ = forEachOuterBlock(l) { _, range in
                        let lanes = T.Vector.scalarCount, vectorEnd = c - c % lanes
                        let (ap, bp) = (a.baseAddress!, b.baseAddress!)
                        for o in range {
                            let from = src.value + o * c, to = dst.value + o * c
                            var ch = 0
                            while ch < vectorEnd {
                                storeVector(loadVector(from + ch) * loadVector(ap + ch) + loadVector(bp + ch), to + ch)
                                ch += lanes
                            }
                            for ch in vectorEnd..<c { to[ch] = from[ch] * a[ch] + b[ch] }
                        }
                    }
                }
            }
            return
        }
        _ = forEachOuterBlock(l) { _, range in
            for o in range {
                for ch in 0..<c {
                    let start = (o * c + ch) * inner, a = inv[ch], b = shift[ch]
                    for i in 0..<inner { dst.value[start + i] = src.value[start + i] * a + b }
                }
            }
        }
    }

    /// `(scale · rsqrt(variance + ε), offset − mean · that)` per channel, in `T` as TensorFlow rounds them.
    static func coefficients<T: FloatingElement>(mean: [T], variance: [T], scale: [T]?, offset: [T]?, epsilon: T)
        -> (inv: [T], shift: [T], invStd: [T])
    {
        let invStd = variance.map { 1 / T.scalarSquareRoot($0 + epsilon) }
        let inv = scale.map { s in zip(invStd, s).map { $0 * $1 } } ?? invStd
        let shift = (0..<mean.count).map { (offset?[$0] ?? 0) - mean[$0] * inv[$0] }
        return (inv, shift, invStd)
    }

    /// Per channel `Σdy` and `Σdy · x̂` with `x̂ = (x − mean) · invStd`, in `Double`.
    static func gradientSums<T: FloatingElement>(
        _ x: UnsafePointer<T>, _ dy: UnsafePointer<T>, _ l: NormalizationLayout, mean: [T], invStd: [T]
    ) -> (sumDy: [Double], sumDyXHat: [Double]) {
        let meanD = mean.map { Double($0) }
        if l.inner == 1 {
            let c = l.channels
            let sums = meanD.withUnsafeBufferPointer { m in
                channelsLastSums(l, count: 2) { o, acc in
                    let row = x + o * c, grad = dy + o * c, means = m.baseAddress!
                    let vectorEnd = c & ~7
                    var ch = 0
                    while ch < vectorEnd {
                        let g = loadDoubles(grad + ch)
                        accumulate(g, into: acc + ch)
                        accumulate(g * (loadDoubles(row + ch) - loadDoubles(means + ch)), into: acc + c + ch)
                        ch += 8
                    }
                    for ch in vectorEnd..<c {
                        let g = Double(grad[ch])
                        acc[ch] += g
                        acc[c + ch] += g * (Double(row[ch]) - m[ch])
                    }
                }
            }
            return (Array(sums[0..<c]), (0..<c).map { sums[c + $0] * Double(invStd[$0]) })
        }
        let sums = channelSums(l, count: 2) { ch, j, acc in
            let g = Double(dy[j])
            acc[2 * ch] += g
            acc[2 * ch + 1] += g * (Double(x[j]) - meanD[ch])
        }
        return ((0..<l.channels).map { sums[2 * $0] }, (0..<l.channels).map { sums[2 * $0 + 1] * Double(invStd[$0]) })
    }

    /// The gradient with the batch's statistics: `dx = scale · invStd · (dy − Σdy/N − x̂ · Σdy·x̂/N)`
    /// with `x̂ = (x − mean) · invStd`; returns the per-channel `Σdy` (the offset's gradient) and
    /// `Σdy·x̂` (the scale's).
    static func trainingBackward<T: FloatingElement>(
        _ x: UnsafePointer<T>, _ dy: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>, _ l: NormalizationLayout,
        mean: [T], invStd: [T], scale: [T]?
    ) -> (sumDy: [T], sumDyXHat: [T]) {
        let c = l.channels, inner = l.inner, n = Double(l.perChannel)
        let (sumDy, sumDyXHat) = gradientSums(x, dy, l, mean: mean, invStd: invStd)
        let k = (0..<c).map { T(Double(scale?[$0] ?? 1) * Double(invStd[$0])) }
        let meanDy = sumDy.map { T($0 / n) }, meanDyXHat = sumDyXHat.map { T($0 / n) }
        let src = UncheckedSendable(x), grad = UncheckedSendable(dy), dst = UncheckedSendable(dx)
        if inner == 1 {
            mean.withUnsafeBufferPointer { m in
                invStd.withUnsafeBufferPointer { s in
                    k.withUnsafeBufferPointer { a in
                        meanDy.withUnsafeBufferPointer { b in
                            meanDyXHat.withUnsafeBufferPointer { e in
                                _ = forEachOuterBlock(l) { _, range in
                                    let lanes = T.Vector.scalarCount, vectorEnd = c - c % lanes
                                    let (mp, sp, ap, bp, ep) = (m.baseAddress!, s.baseAddress!, a.baseAddress!, b.baseAddress!, e.baseAddress!)
                                    for o in range {
                                        let xs = src.value + o * c, gs = grad.value + o * c, out = dst.value + o * c
                                        var ch = 0
                                        while ch < vectorEnd {
                                            let xHat = (loadVector(xs + ch) - loadVector(mp + ch)) * loadVector(sp + ch)
                                            let v = loadVector(ap + ch) * (loadVector(gs + ch) - loadVector(bp + ch) - xHat * loadVector(ep + ch))
                                            storeVector(v, out + ch)
                                            ch += lanes
                                        }
                                        for ch in vectorEnd..<c {
                                            let xHat = (xs[ch] - m[ch]) * s[ch]
                                            out[ch] = a[ch] * (gs[ch] - b[ch] - xHat * e[ch])
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            return (sumDy.map { T($0) }, sumDyXHat.map { T($0) })
        }
        _ = forEachOuterBlock(l) { _, range in
            for o in range {
                for ch in 0..<c {
                    let start = (o * c + ch) * inner, m = mean[ch], s = invStd[ch]
                    let a = k[ch], b = meanDy[ch], e = meanDyXHat[ch]
                    for i in 0..<inner {
                        let xHat = (src.value[start + i] - m) * s
                        dst.value[start + i] = a * (grad.value[start + i] - b - xHat * e)
                    }
                }
            }
        }
        return (sumDy.map { T($0) }, sumDyXHat.map { T($0) })
    }
}

/// Layer normalization's kernels (each position normalized over the channel axis).
enum LayerNormKernels {
    /// Per row: mean and `1 / sqrt(variance + ε)` (biased variance, `Double` sums), and the output
    /// `x̂ · scale + offset` with `x̂ = (x − mean) · invStd` (TensorFlow's fused path, then scale and offset).
    static func forward<T: FloatingElement>(
        _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ l: NormalizationLayout, scale: [T]?, offset: [T]?, epsilon: T
    ) -> (mean: [T], invStd: [T]) {
        let c = l.channels, inner = l.inner
        var mean = [T](repeating: 0, count: l.rows), invStd = [T](repeating: 0, count: l.rows)
        mean.withUnsafeMutableBufferPointer { mb in
            invStd.withUnsafeMutableBufferPointer { sb in
                let mp = UncheckedSendable(mb.baseAddress), sp = UncheckedSendable(sb.baseAddress)
                let src = UncheckedSendable(x), dst = UncheckedSendable(y)
                _ = forEachOuterBlock(l) { _, range in
                    for o in range {
                        for i in 0..<inner {
                            let base = o * c * inner + i
                            var sum = 0.0
                            for ch in 0..<c { sum += Double(src.value[base + ch * inner]) }
                            let m = T(sum / Double(c)), md = Double(m)
                            var squares = 0.0
                            for ch in 0..<c {
                                let d = Double(src.value[base + ch * inner]) - md
                                squares += d * d
                            }
                            let s = 1 / T.scalarSquareRoot(T(squares / Double(c)) + epsilon)
                            mp.value![o * inner + i] = m
                            sp.value![o * inner + i] = s
                            for ch in 0..<c {
                                var v = (src.value[base + ch * inner] - m) * s
                                if let scale { v = v * scale[ch] }
                                if let offset { v = v + offset[ch] }
                                dst.value[base + ch * inner] = v
                            }
                        }
                    }
                }
            }
        }
        return (mean, invStd)
    }

    /// The gradient: per row, with `g = dy · scale`, `dx = invStd · (g − mean(g) − x̂ · mean(g · x̂))`;
    /// per channel `Σdy · x̂` (scale) and `Σdy` (offset) over the rows.
    static func backward<T: FloatingElement>(
        _ x: UnsafePointer<T>, _ dy: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>, _ l: NormalizationLayout,
        mean: [T], invStd: [T], scale: [T]?
    ) -> (sumDy: [T], sumDyXHat: [T]) {
        let c = l.channels, inner = l.inner
        let blocks = outerBlocks(l).count
        var partial = [Double](repeating: 0, count: blocks * 2 * c)
        partial.withUnsafeMutableBufferPointer { pb in
            let pp = UncheckedSendable(pb.baseAddress!)
            let src = UncheckedSendable(x), grad = UncheckedSendable(dy), dst = UncheckedSendable(dx)
            _ = forEachOuterBlock(l) { b, range in
                let acc = pp.value + b * 2 * c
                for o in range {
                    for i in 0..<inner {
                        let base = o * c * inner + i, row = o * inner + i
                        let m = mean[row], s = invStd[row]
                        var sumG = 0.0, sumGX = 0.0
                        for ch in 0..<c {
                            let j = base + ch * inner
                            let xHat = (src.value[j] - m) * s
                            let g = Double(grad.value[j]) * Double(scale?[ch] ?? 1)
                            sumG += g
                            sumGX += g * Double(xHat)
                            acc[ch] += Double(grad.value[j]) * Double(xHat)
                            acc[c + ch] += Double(grad.value[j])
                        }
                        let meanG = sumG / Double(c), meanGX = sumGX / Double(c)
                        for ch in 0..<c {
                            let j = base + ch * inner
                            let xHat = Double((src.value[j] - m) * s)
                            let g = Double(grad.value[j]) * Double(scale?[ch] ?? 1)
                            dst.value[j] = T(Double(s) * (g - meanG - xHat * meanGX))
                        }
                    }
                }
            }
        }
        var total = [Double](repeating: 0, count: 2 * c)
        for b in 0..<blocks { for k in 0..<(2 * c) { total[k] += partial[b * 2 * c + k] } }
        return ((0..<c).map { T(total[c + $0]) }, (0..<c).map { T(total[$0]) })
    }
}
