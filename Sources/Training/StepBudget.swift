/// How many training steps fit in a wall-clock limit, planned from the step time measured as the steps run.
///
/// Why: the same recipe's steps take about three times longer on a CPU without AVX-512 BF16 than on one
/// with it (RESULTS.md, stops 48–49), so a recipe given in steps is not a recipe given in time. A user with
/// an hour wants the most steps that end within it, with the learning-rate schedule annealed to their end
/// rather than cut off at a high rate; the recipe's own steps stay the most it runs.
public struct StepBudget: Sendable, Equatable {
    /// Seconds from the run's start by which the steps, and the scoring after them, should end.
    public var limit: Double
    /// The most steps to run (the recipe's).
    public var most: Int

    /// Steps not timed: a run's first steps are slower (allocations, the engine choosing its kernels).
    public static let untimedSteps = 20
    /// Steps timed after those before the first plan; the plan is renewed every as many steps after it,
    /// from the mean time of every timed step, so a machine that slows down (or speeds up) is followed.
    public static let timedSteps = 100

    public init(limit: Double, most: Int) {
        self.limit = limit
        self.most = most
    }

    /// The number of steps to run in all, planned when `done` have finished `elapsed` seconds after the
    /// run's start, each timed step having taken `secondsPerStep`, and `reserve` seconds kept for what
    /// follows the steps. `done` (stop now) when nothing more fits; never more than `most`.
    public func plan(done: Int, elapsed: Double, secondsPerStep: Double, reserve: Double) -> Int {
        guard secondsPerStep > 0, secondsPerStep.isFinite else { return max(done, most) }
        let left = limit - elapsed - reserve
        let more = left > 0 ? Int((left / secondsPerStep).rounded(.down)) : 0
        return max(done, min(most, done + more))
    }

    /// Whether the plan is renewed after `done` steps.
    public static func plansAfter(_ done: Int) -> Bool {
        done >= untimedSteps + timedSteps && (done - untimedSteps) % timedSteps == 0
    }

    /// The seconds kept for scoring `candidates` candidates `readings` times after the steps (each read
    /// with its left-right mirror, so twice), from the time of a training step of `batchSize` cubes: a
    /// forward pass is about a third of a step's work (forward and backward). Doubled, as a margin for
    /// what this leaves out (calibration, writing the weights).
    public static func scoringReserve(candidates: Int, readings: Int, secondsPerStep: Double, batchSize: Int) -> Double {
        2 * Double(candidates * readings * 2) * secondsPerStep / (3 * Double(max(batchSize, 1)))
    }
}

/// A wall-clock limit spent before the first training step: the preparation took all of it. The caches
/// the preparation wrote are kept, so a second run with the same folders starts its steps sooner.
public struct TimeLimitSpent: Error, CustomStringConvertible {
    public var limit: Double
    public var elapsed: Double

    public init(limit: Double, elapsed: Double) {
        (self.limit, self.elapsed) = (limit, elapsed)
    }

    public var description: String {
        String(format: "the time limit of %.1f min was spent before the first training step (%.1f min of preparation); the prepared series are cached, so a second run with the same folders and cache starts its steps sooner, or give a longer limit",
               limit / 60, elapsed / 60)
    }
}

/// The steps paused at their time (`CandidateClassifierTraining.pauseAfter`): the checkpoint is written
/// and no weights are, so that a later run with `resume` goes on from that step as if never stopped.
public struct TrainingPaused: Error, CustomStringConvertible {
    public var step: Int
    public var planned: Int
    public var checkpoint: String
    public var minutes: Double

    public init(step: Int, planned: Int, checkpoint: String, minutes: Double) {
        (self.step, self.planned, self.checkpoint, self.minutes) = (step, planned, checkpoint, minutes)
    }

    public var description: String {
        String(format: "paused after step %d of %d, %.1f min after the start; the checkpoint is %@: the same command with --resume goes on from there",
               step, planned, minutes, checkpoint)
    }
}
