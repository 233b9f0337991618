import Foundation

/// The OpenAPI 3.1 description of the JSON API, served at `/openapi.json`.
public enum OpenAPIDocument {
    static func ref(_ name: String) -> [String: Any] { ["$ref": "#/components/schemas/\(name)"] }
    static func jsonBody(_ schema: [String: Any], _ description: String) -> [String: Any] {
        ["description": description, "content": ["application/json": ["schema": schema]]]
    }
    static let errorResponse = jsonBody(ref("Error"), "error")
    static let keyParameter: [String: Any] = [
        "name": "key", "in": "path", "required": true,
        "schema": ["type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$"],
        "description": "The series' key: its SeriesInstanceUID, or the input folder's name when it could not be read",
    ]

    public static let document: [String: Any] = [
        "openapi": "3.1.0",
        "info": ["title": "Willis", "version": "1",
                 "description": "Intracranial aneurysm triage: predictions per series (13 artery locations and Aneurysm Present), their evidence, and uploads."],
        "paths": [
            "/api/series": ["get": [
                "summary": "The worklist: recorded series, highest Aneurysm Present first",
                "parameters": [
                    ["name": "modality", "in": "query", "required": false, "schema": ["type": "string"], "description": "DICOM Modality (CT, MR)"],
                    ["name": "min", "in": "query", "required": false, "schema": ["type": "number", "minimum": 0, "maximum": 1],
                     "description": "Only series whose Aneurysm Present is at least this"],
                ],
                "responses": ["200": jsonBody(["type": "object", "required": ["series"],
                                               "properties": ["series": ["type": "array", "items": ref("Series")]]], "the series"),
                              "400": errorResponse, "401": errorResponse],
            ]],
            "/api/series/{key}": ["get": [
                "summary": "One series' result",
                "parameters": [keyParameter],
                "responses": ["200": jsonBody(ref("Series"), "the series"), "404": errorResponse, "401": errorResponse],
            ]],
            "/api/predict": ["post": [
                "summary": "Upload one DICOM series (a zip, or a form of its files or a zip) and queue its prediction",
                "requestBody": ["required": true, "content": [
                    "application/zip": ["schema": ["type": "string", "contentMediaType": "application/zip"]],
                    "multipart/form-data": ["schema": ["type": "object", "properties": [
                        "files": ["type": "array", "items": ["type": "string", "contentMediaType": "application/octet-stream"]],
                    ]]],
                ]],
                "responses": ["202": jsonBody(ref("Job"), "queued; follow the Location header"),
                              "400": errorResponse, "401": errorResponse, "413": errorResponse, "415": errorResponse, "503": errorResponse],
            ]],
            "/api/jobs/{id}": ["get": [
                "summary": "An upload's job",
                "parameters": [["name": "id", "in": "path", "required": true, "schema": ["type": "string"]]],
                "responses": ["200": jsonBody(ref("Job"), "the job"), "404": errorResponse, "401": errorResponse],
            ]],
        ],
        "components": [
            "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer", "description": "Required when willis serve was given --token"]],
            "schemas": [
                "Error": ["type": "object", "properties": ["error": ["type": "object", "properties": ["message": ["type": "string"]]]]],
                "Candidate": ["type": "object", "required": ["lps", "voxel", "probability"], "properties": [
                    "lps": ["type": "array", "items": ["type": "number"], "minItems": 3, "maxItems": 3, "description": "patient coordinates, mm (DICOM LPS)"],
                    "voxel": ["type": "array", "items": ["type": "integer"], "minItems": 3, "maxItems": 3, "description": "(i, j, k) of the prepared grid"],
                    "probability": ["type": "number", "minimum": 0, "maximum": 1],
                    "classifier": ["type": "number", "description": "the candidate classifier's probability, when one scored the point"],
                    "heatmap": ["type": "number", "description": "the heatmap's value at the point, when probability is no longer it"],
                    "source": ["type": "string", "enum": ["dot-filter"], "description": "what found the point, when not the heatmap"],
                ]],
                "Result": ["type": "object", "required": ["key", "source", "status", "warnings", "files", "predictedAt"], "properties": [
                    "key": ["type": "string"], "seriesInstanceUID": ["type": "string"], "source": ["type": "string"],
                    "modality": ["type": "string"], "seriesDescription": ["type": "string"],
                    "status": ["type": "string", "enum": ["ok", "failed"]],
                    "probabilities": ["type": "array", "items": ["type": "number", "minimum": 0, "maximum": 1], "minItems": 14, "maxItems": 14,
                                      "description": "the 13 locations then Aneurysm Present, in the competition's column order"],
                    "error": ["type": "string"], "warnings": ["type": "array", "items": ["type": "string"]],
                    "inputShape": ["type": "array", "items": ["type": "integer"]],
                    "files": ["type": "array", "items": ["type": "string"]],
                    "candidates": ["type": "array", "items": ref("Candidate")],
                    "predictedAt": ["type": "string", "format": "date-time"],
                ]],
                "Series": ["type": "object", "required": ["result"], "properties": [
                    "result": ref("Result"),
                    "aneurysmPresent": ["type": "number"], "mostLikelyLocation": ["type": "string"],
                    "identifying": ["type": "object", "additionalProperties": ["type": "string"],
                                    "description": "PatientName, PatientID, PatientBirthDate: only when the server runs with --show-phi"],
                ]],
                "Job": ["type": "object", "required": ["id", "status", "files", "submittedAt"], "properties": [
                    "id": ["type": "string"], "status": ["type": "string", "enum": ["queued", "running", "done", "failed"]],
                    "position": ["type": "integer", "description": "jobs ahead while queued"], "files": ["type": "integer"],
                    "submittedAt": ["type": "string", "format": "date-time"], "startedAt": ["type": "string", "format": "date-time"],
                    "finishedAt": ["type": "string", "format": "date-time"],
                    "resultKey": ["type": "string", "description": "the series' key once recorded"], "error": ["type": "string"],
                ]],
            ],
        ],
        "security": [[:], ["bearer": []]],
    ]

    public static let json: Data = (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted])) ?? Data("{}".utf8)
}
