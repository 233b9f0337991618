import Foundation
import Testing
@testable import Training

@Suite struct StepBudgetTests {
    @Test func planRunsTheStepsThatFitBeforeTheLimitAndNeverMoreThanTheRecipe() {
        let budget = StepBudget(limit: 600, most: 10_000)
        // 600 s less 100 elapsed less 50 kept: 450 s at 0.25 s a step is 1800 more steps.
        #expect(budget.plan(done: 120, elapsed: 100, secondsPerStep: 0.25, reserve: 50) == 1920)
        // A part step does not fit.
        #expect(budget.plan(done: 120, elapsed: 100, secondsPerStep: 0.3, reserve: 50) == 120 + 1500)
        #expect(budget.plan(done: 120, elapsed: 100, secondsPerStep: 0.31, reserve: 50) == 120 + 1451)
        // Time for more than the recipe: the recipe's steps.
        #expect(budget.plan(done: 120, elapsed: 100, secondsPerStep: 0.01, reserve: 50) == 10_000)
        // Nothing left, or less than nothing: stop where it stands.
        #expect(budget.plan(done: 500, elapsed: 560, secondsPerStep: 0.25, reserve: 50) == 500)
        #expect(budget.plan(done: 500, elapsed: 700, secondsPerStep: 0.25, reserve: 50) == 500)
        // Already past the recipe (a plan never asks for steps back).
        #expect(StepBudget(limit: 600, most: 100).plan(done: 120, elapsed: 10, secondsPerStep: 0.25, reserve: 0) == 120)
        // An unmeasured step time keeps the recipe.
        #expect(budget.plan(done: 120, elapsed: 100, secondsPerStep: 0, reserve: 50) == 10_000)
        #expect(budget.plan(done: 120, elapsed: 100, secondsPerStep: .nan, reserve: 50) == 10_000)
    }

    @Test func plansAreMadeAfterTheTimedStepsAndRenewedAtTheirPace() {
        let first = StepBudget.untimedSteps + StepBudget.timedSteps
        let planned = (0...(first + 3 * StepBudget.timedSteps)).filter(StepBudget.plansAfter)
        #expect(planned == [first, first + StepBudget.timedSteps, first + 2 * StepBudget.timedSteps, first + 3 * StepBudget.timedSteps])
    }

    @Test func theScoringReserveGrowsWithTheCandidatesAndTheirReadings() {
        // 300 candidates read once with their mirror: 600 forward passes of a third of a step's work per
        // cube, at 0.3 s for 32 cubes: 1.875 s, doubled.
        #expect(abs(StepBudget.scoringReserve(candidates: 300, readings: 1, secondsPerStep: 0.3, batchSize: 32) - 3.75) < 1e-9)
        #expect(abs(StepBudget.scoringReserve(candidates: 300, readings: 2, secondsPerStep: 0.3, batchSize: 32) - 7.5) < 1e-9)
        #expect(StepBudget.scoringReserve(candidates: 0, readings: 2, secondsPerStep: 0.3, batchSize: 32) == 0)
    }

    @Test func aSpentLimitSaysWhatToDo() {
        let text = TimeLimitSpent(limit: 600, elapsed: 720).description
        #expect(text.contains("10.0 min") && text.contains("12.0 min of preparation") && text.contains("cached"))
    }
}
