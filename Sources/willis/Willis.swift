import ArgumentParser

@main
struct Willis: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Willis")
}
